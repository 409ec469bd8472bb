#!/bin/bash
# EX2 on all 95 concepts of the development world s0 (scripts/seed_world.sh 0; clip-reward: a frozen copy of its
# 200-step CLIP) with the settings both reward runs share; contrastive/run.sh and masked/run.sh add theirs.
# usage: ex2.sh OUT_NAME [train ex2 options...]   (worlds under $SEEDS, default runs/seeds in the checkout)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
S=${SEEDS:-$REPO/runs/seeds}
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
out=$1
shift
exec "$E" train ex2 --data "$S/s0/world" --model "$S/s0/desc/clip-reward" --out "$S/s0/desc/$out" \
  --train-concepts 0 --reward contrastive --max-new-tokens 16 --num-generations 8 --prompts-per-step 2 \
  --per-concept 25 --best-of 2 --batch-size 64 --threads 2 "$@"
