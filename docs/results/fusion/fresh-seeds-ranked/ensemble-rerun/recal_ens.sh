#!/usr/bin/env bash
# Recalibrate the PRO KBs of seeds 7304-7306 with the template ensemble (the serving default).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
for s in 7304 7305 7306; do
  R=${SEEDS:-$REPO/runs/seeds}/s$s; F=$R/fusion
  for pair in "kb_t_pro_ens train" "kb_tv_pro_ens train,val"; do
    set -- $pair
    [ -f "$F/.$1.calibrated" ] && continue
    rm -rf "$F/$1" && cp -r "$R/kb" "$F/$1"
    "$E" kb calibrate --kb "$F/$1" --data "$R/world" --model "$R/clip" --splits "$2" --rewriter "$F/pro" \
      --cache-dir "$F/cache" --device cpu
    touch "$F/.$1.calibrated"
  done
done
echo "recal done $(date)"
