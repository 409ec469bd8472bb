#!/bin/bash
# The classification table in classify.md: the two EX2 sets in this folder (made on the development world s0)
# against the class name, the 80 templates and 25 random words, on the fresh worlds 7301-7303 with their own CLIPs
# (scripts/seed_world.sh SEED for each). usage: classify.sh [OUT]   (worlds under $SEEDS, default runs/seeds)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
S=${SEEDS:-$REPO/runs/seeds}
here=$REPO/docs/results/descriptions/ex2-rewards
exec "$E" bench classify --data "$S/s7301/world,$S/s7302/world,$S/s7303/world" \
    --model "$S/s7301/clip,$S/s7302/clip,$S/s7303/clip" \
    --descriptions "classname,templates,waffle:25,$here/contrastive/ex2.jsonl,$here/masked/ex2.jsonl" \
    --out "${1:-$S/r2/classify-ex2-cm}" --cache-dir "$S/s7301/desc/cache" --threads 2
