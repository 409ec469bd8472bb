#!/usr/bin/env bash
# The decisive run: PRO (cached decoder) vs PRO (uncached, format 1 copy) vs template, same index/KB/text tower, cold queries.
set -euo pipefail
E=/work/wt-rewriter/.venv/bin/evdsearch
D=/work/rwdev
OUT=${1:-$D/bench-serve}
I=$D/index K=$D/kb_cal O=$D/clip-onnx
pids=()
$E serve --index $I --kb $K --rewriter $D/pro --text-onnx $O --port 50101 > $D/serve-pro.log 2>&1 & pids+=($!)
$E serve --index $I --kb $K --rewriter template --text-onnx $O --port 50102 > $D/serve-template.log 2>&1 & pids+=($!)
$E serve --index $I --kb $K --rewriter $D/pro-uncached --text-onnx $O --port 50103 > $D/serve-uncached.log 2>&1 & pids+=($!)
/work/main/.venv/bin/evdsearch serve --index $I --kb $K --rewriter $D/pro-uncached --text-onnx $O --port 50104 > $D/serve-before.log 2>&1 & pids+=($!)
trap 'kill ${pids[@]} 2>/dev/null' EXIT
for f in pro template uncached before; do for i in $(seq 300); do grep -q "serving evdsearch" $D/serve-$f.log && break; sleep 1; done; done
uptime | tee $OUT.load-before
$E bench serve --server 127.0.0.1:50101 --label pro --also template=127.0.0.1:50102 --also pro-uncached=127.0.0.1:50103 --also pro-main=127.0.0.1:50104 \
  --baseline template --mode fused --workloads cold --queries /work/wt-rewriter/docs/benchmarks/serve-speed/queries.txt \
  --concurrency 1,16 --duration 5 --warmup 1 --rounds 3 --timeout 30 \
  --machine "2-core CPU dev box, shared (load in the notes)" --out $OUT --stem serve_pro_vs_template
uptime | tee $OUT.load-after
