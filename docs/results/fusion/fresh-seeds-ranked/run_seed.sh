#!/usr/bin/env bash
# Second fresh set (7304-7306): world, KB and base CLIP (scripts/seed_world.sh), then the adaptive-fusion
# pipeline (scripts/adaptive_fusion_world.sh) for one seed. Usage: run_seed.sh SEED   (worlds under $SEEDS,
# default runs/seeds in the checkout)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
s=${1:?seed}
d=${SEEDS:-$REPO/runs/seeds}/s$s
"$REPO/scripts/seed_world.sh" "$s" "$d"
"$REPO/scripts/adaptive_fusion_world.sh" "$d" all
echo "pipeline $s done $(date)"
