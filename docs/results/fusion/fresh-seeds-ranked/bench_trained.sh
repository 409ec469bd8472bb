#!/usr/bin/env bash
# Issue 12 on the second fresh set (7304-7306): the trained rewriters through the serving path.
set -euo pipefail
E=/work/main/.venv/bin/evdsearch
W=/work/seeds/s7304,/work/seeds/s7305,/work/seeds/s7306
$E bench quality --world $W --kb train+val=fusion/kb_tv_pro --kb train=fusion/kb_t_pro \
  --rewriter SFT=fusion/sft --rewriter PRO=fusion/pro \
  --compare "fused adaptive[train+val] + PRO,fused adaptive[train+val] + SFT" \
  --compare "fused a=0.5 + PRO,fused a=0.5 + SFT" \
  --compare "fused adaptive[train] + PRO,fused adaptive[train] + SFT" \
  --device cpu --out /work/seeds/r3/out/trained --index fusion/test-index
