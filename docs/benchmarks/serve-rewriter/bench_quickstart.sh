#!/usr/bin/env bash
# The served quality configuration against the template one, on what README command 1 builds: the quickstart's
# index, KB (calibrated with the shipped PRO rewriter) and CLIP text tower (fp32 onnxruntime), cold queries,
# cells interleaved. PRO = the shipped rewriter ensembled with the template, as `evdsearch quickstart` serves it.
#   bash scripts/bootstrap.sh && .venv/bin/evdsearch quickstart --no-serve
#   docs/benchmarks/serve-rewriter/bench_quickstart.sh [WORKDIR] [OUT] [STEM]
set -euo pipefail
cd "$(dirname "$0")/../../.."
E=${EVDSEARCH:-.venv/bin/evdsearch}
W=${1:-runs/quickstart}
OUT=${2:-docs/benchmarks/serve-rewriter}
STEM=${3:-serve_quickstart_pro_vs_template}
I=$W/index K=$W/kb O=$W/clip/onnx R=$W/rewriter-shipped
pids=()
$E serve --index $I --kb $K --rewriter $R --text-onnx $O --port 50111 > $OUT/$STEM.pro.log 2>&1 & pids+=($!)
$E serve --index $I --kb $K --rewriter template --text-onnx $O --port 50112 > $OUT/$STEM.template.log 2>&1 & pids+=($!)
trap 'kill ${pids[@]} 2>/dev/null; rm -f $OUT/$STEM.*.log' EXIT
for f in pro template; do
  for i in $(seq 300); do grep -q "serving evdsearch" $OUT/$STEM.$f.log && break; sleep 1; done
done
$E bench serve --server 127.0.0.1:50111 --label pro --also template=127.0.0.1:50112 \
  --baseline template --mode fused --workloads cold --queries docs/benchmarks/serve-speed/queries.txt \
  --concurrency 1,16 --duration 5 --warmup 1 --rounds 3 --timeout 30 --explain-every 8 \
  --machine "${MACHINE:-2-core AMD EPYC CPU, no GPU}" --out $OUT --stem $STEM
