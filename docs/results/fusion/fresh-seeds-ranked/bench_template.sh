#!/usr/bin/env bash
# Template rows on the second fresh set (7304-7306), after run_seed.sh for each seed. Usage: bench_template.sh [OUT]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
E=${EVDSEARCH:-$REPO/.venv/bin/evdsearch}
S=${SEEDS:-$REPO/runs/seeds}
"$E" bench quality --world "$S/s7304,$S/s7305,$S/s7306" --kb train+val=fusion/kb_tv --kb train=fusion/kb_t \
  --rewriter template --device cpu --out "${1:-$S/r3/out}/template" --index fusion/test-index
