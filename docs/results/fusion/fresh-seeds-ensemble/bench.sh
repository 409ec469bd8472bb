#!/usr/bin/env bash
# Trained rewriters as served (ensembled with the template) and alone, on PRO-calibrated KBs; then the
# template rows on the template-calibrated KBs. Worlds: run_seed.sh (../fresh-seeds-ranked/) for each seed.
# Usage: bench.sh [WORLDS [OUT [KB_TRAIN_VAL KB_TRAIN]]]; defaults: the third fresh set 7307-7309 under $SEEDS
#   (default runs/seeds in the checkout), OUT $SEEDS/r4/set3.
# bench.sh WORLDS OUT finetuned: the fine-tuned CLIP rows (after finetuned_seed.sh for each seed).
# The re-run on set 2 was: bench.sh $SEEDS/s7304,$SEEDS/s7305,$SEEDS/s7306 OUT \
#   fusion/kb_tv_pro_ens fusion/kb_t_pro_ens   (trained rows only)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
S=${SEEDS:-$REPO/runs/seeds}
W=${1:-$S/s7307,$S/s7308,$S/s7309}
OUT=${2:-$S/r4/set3}
if [ "${3:-}" = finetuned ]; then  # CLIP fine-tuned with the frozen PRO rewriter (finetuned_seed.sh)
  exec "$E" bench quality --world "$W" --clip fusion/clip-ft --kb train+val=fusion/kb_tv_pro_ft --rewriter PRO=fusion/pro \
    --device cpu --out "$OUT/finetuned" --index fusion/test-index-ft
fi
"$E" bench quality --world "$W" --kb train+val=${3:-fusion/kb_tv_pro} --kb train=${4:-fusion/kb_t_pro} \
  --rewriter PRO=fusion/pro --rewriter SFT=fusion/sft \
  --rewriter-alone "PRO alone=fusion/pro" --rewriter-alone "SFT alone=fusion/sft" \
  --compare "fused adaptive[train+val] + PRO,fused adaptive[train+val] + SFT" \
  --compare "fused a=0.5 + PRO,fused a=0.5 + SFT" \
  --compare "fused adaptive[train] + PRO,fused adaptive[train] + SFT" \
  --compare "fused adaptive[train] + PRO,fused adaptive[train] + PRO alone" \
  --compare "fused adaptive[train+val] + PRO,fused adaptive[train+val] + PRO alone" \
  --device cpu --out "$OUT/trained" --index fusion/test-index
[ -n "${3:-}" ] && exit 0
"$E" bench quality --world "$W" --kb train+val=fusion/kb_tv --kb train=fusion/kb_t --rewriter template \
  --device cpu --out "$OUT/template" --index fusion/test-index
