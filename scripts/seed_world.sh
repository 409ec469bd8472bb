#!/usr/bin/env bash
# One world root for the studies in docs/: ROOT/world (the shapes world of SEED), ROOT/kb (the world's
# encyclopedia, the test oracle) and ROOT/clip (evd-tiny trained STEPS steps, default 500); each stage is
# skipped when its output is there, so a rerun resumes.
# Usage: scripts/seed_world.sh SEED [ROOT]   ROOT defaults to $SEEDS/sSEED, SEEDS to runs/seeds in the checkout.
#   The development world s0 of docs/rewriter.md had a 200-step CLIP: STEPS=200 scripts/seed_world.sh 0
set -euo pipefail
s=${1:?usage: $0 SEED [ROOT]}
REPO=$(cd "$(dirname "$0")/.." && pwd)
d=${2:-${SEEDS:-$REPO/runs/seeds}/s$s}
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1} OMP_WAIT_POLICY=PASSIVE
[ -f "$d/world/world.json" ] || "$E" world make --out "$d/world" --seed "$s"
[ -f "$d/kb/data.mdb" ] || "$E" kb import "$d/world/encyclopedia.jsonl" --kb "$d/kb"
[ -f "$d/clip/open_clip_model.safetensors" ] || "$E" train clip --data "$d/world" --model evd-tiny --out "$d/clip" \
  --steps "${STEPS:-500}" --threads 1 --save-every 100 --resume
echo "world root $d ready"
