#!/usr/bin/env bash
# Diagnostic (not an independent test): set 2's train+val PRO KBs recalibrated with the fit-as-prior rule,
# against the ensemble KBs of recal_ens.sh. Usage: prior_set2.sh [OUT]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
S=${SEEDS:-$REPO/runs/seeds}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
for s in 7304 7305 7306; do
  R=$S/s$s; F=$R/fusion
  [ -f "$F/.kb_tv_pro_prior.calibrated" ] && continue
  rm -rf "$F/kb_tv_pro_prior" && cp -r "$R/kb" "$F/kb_tv_pro_prior"
  "$E" kb calibrate --kb "$F/kb_tv_pro_prior" --data "$R/world" --model "$R/clip" --splits train,val \
    --rewriter "$F/pro" --cache-dir "$F/cache" --device cpu
  touch "$F/.kb_tv_pro_prior.calibrated"
done
"$E" bench quality --world "$S/s7304,$S/s7305,$S/s7306" --kb "train+val=fusion/kb_tv_pro_ens" \
  --kb "train+val prior=fusion/kb_tv_pro_prior" --rewriter PRO=fusion/pro \
  --compare "fused adaptive[train+val] + PRO,fused adaptive[train+val prior] + PRO" \
  --device cpu --out "${1:-$S/r4/set2-prior}" --index fusion/test-index
echo "prior done $(date)"
