#!/usr/bin/env bash
set -euo pipefail
E=/work/main/.venv/bin/evdsearch
W=/work/seeds/s7304,/work/seeds/s7305,/work/seeds/s7306
$E bench quality --world $W --kb train+val=fusion/kb_tv --kb train=fusion/kb_t --rewriter template \
  --device cpu --out /work/seeds/r3/out/template --index fusion/test-index
