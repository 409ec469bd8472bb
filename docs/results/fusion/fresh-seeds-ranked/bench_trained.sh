#!/usr/bin/env bash
# The trained rewriters through the serving path on the second fresh set (7304-7306). Usage: bench_trained.sh [OUT]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
S=${SEEDS:-$REPO/runs/seeds}
"$E" bench quality --world "$S/s7304,$S/s7305,$S/s7306" --kb train+val=fusion/kb_tv_pro --kb train=fusion/kb_t_pro \
  --rewriter SFT=fusion/sft --rewriter PRO=fusion/pro \
  --compare "fused adaptive[train+val] + PRO,fused adaptive[train+val] + SFT" \
  --compare "fused a=0.5 + PRO,fused a=0.5 + SFT" \
  --compare "fused adaptive[train] + PRO,fused adaptive[train] + SFT" \
  --device cpu --out "${1:-$S/r3/out}/trained" --index fusion/test-index
