#!/usr/bin/env bash
# Issue 23's serving run (after prep.sh and dev_rewriter.sh): PRO with the cached decoder, the template, and PRO
# uncached (format-1 export) on one index, KB and text tower, cold queries, cells interleaved; with BEFORE set to
# the evdsearch executable of the code before issue 23 (a checkout of main before the merge, bootstrapped),
# also that code serving the uncached export (pro-main).
#   [BEFORE=../before/.venv/bin/evdsearch] docs/benchmarks/serve-rewriter/bench.sh [WORK] [OUT]
set -euo pipefail
cd "$(dirname "$0")/../../.."
E=${EVDSEARCH:-.venv/bin/evdsearch}
D=${1:-runs/rwdev}
OUT=${2:-$D/bench-serve}
I=$D/index K=$D/kb_cal O=$D/clip-onnx
pids=() servers=(pro template uncached) also=(--also template=127.0.0.1:50102 --also pro-uncached=127.0.0.1:50103)
$E serve --index $I --kb $K --rewriter $D/pro --text-onnx $O --port 50101 > $D/serve-pro.log 2>&1 & pids+=($!)
$E serve --index $I --kb $K --rewriter template --text-onnx $O --port 50102 > $D/serve-template.log 2>&1 & pids+=($!)
$E serve --index $I --kb $K --rewriter $D/pro-uncached --text-onnx $O --port 50103 > $D/serve-uncached.log 2>&1 & pids+=($!)
if [ -n "${BEFORE:-}" ]; then
  "$BEFORE" serve --index $I --kb $K --rewriter $D/pro-uncached --text-onnx $O --port 50104 > $D/serve-before.log 2>&1 & pids+=($!)
  servers+=(before) also+=(--also pro-main=127.0.0.1:50104)
fi
trap 'kill ${pids[@]} 2>/dev/null' EXIT
for f in "${servers[@]}"; do for i in $(seq 300); do grep -q "serving evdsearch" $D/serve-$f.log && break; sleep 1; done; done
uptime | tee $OUT.load-before
$E bench serve --server 127.0.0.1:50101 --label pro "${also[@]}" \
  --baseline template --mode fused --workloads cold --queries docs/benchmarks/serve-speed/queries.txt \
  --concurrency 1,16 --duration 5 --warmup 1 --rounds 3 --timeout 30 \
  --machine "2-core CPU dev box, shared (load in CHANGELOG.md)" --out $OUT --stem serve_pro_vs_template
uptime | tee $OUT.load-after
