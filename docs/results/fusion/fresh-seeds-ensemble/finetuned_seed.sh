#!/usr/bin/env bash
# Fine-tuned CLIP rows on one fresh seed: CLIP fine-tuned with the frozen PRO rewriter (p = 0.6, 150 steps as
# on the development world), its test index, and a train+val KB calibrated with it and PRO.
# Usage: finetuned_seed.sh SEED   (world root $SEEDS/sSEED, SEEDS defaults to runs/seeds in the checkout)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
R=${SEEDS:-$REPO/runs/seeds}/s${1:?seed}; F=$R/fusion
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
[ -f "$F/clip-ft/open_clip_model.safetensors" ] || "$E" train clip-rewrite --data "$R/world" --model "$R/clip" \
  --rewriter "$F/pro" --kb "$F/kb_t_pro" --out "$F/clip-ft" --steps 150 --warmup 15 --threads 1 --device cpu --force
if [ ! -f "$F/.kb_tv_pro_ft.calibrated" ]; then
  rm -rf "$F/kb_tv_pro_ft" && cp -r "$R/kb" "$F/kb_tv_pro_ft"
  "$E" kb calibrate --kb "$F/kb_tv_pro_ft" --data "$R/world" --model "$F/clip-ft" --splits train,val --rewriter "$F/pro" \
    --cache-dir "$F/cache-ft" --device cpu
  touch "$F/.kb_tv_pro_ft.calibrated"
fi
echo "finetuned $1 done $(date)"
