#!/usr/bin/env bash
# Issue 23's development rewriter (after prep.sh): KB, DEQR (masked), SFT, PRO with shortened steps, its ONNX
# export, a format-1 (uncached) copy of that export, and the benchmark KB calibrated with it.
#   docs/benchmarks/serve-rewriter/dev_rewriter.sh [ROOT] [WORK]      (defaults as prep.sh's)
set -euo pipefail
cd "$(dirname "$0")/../../.."
E=${EVDSEARCH:-.venv/bin/evdsearch}
PY=${PYTHON:-.venv/bin/python}
R=${1:-runs/s7311}
D=${2:-runs/rwdev}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
[ -f $D/kb/current/data.mdb ] || $E kb import $R/world/encyclopedia.jsonl --kb $D/kb
[ -f $D/deqr/stats.json ] || $E train deqr --data $R/world --kb $D/kb --clip $R/clip --out $D/deqr --regime masked --max-images 2000 --device cpu --force
[ -f $D/sft/evdsearch_rewriter.json ] || $E train rewriter --deqr $D/deqr --out $D/sft --steps 700 --max-minutes 0 --batch-size 32 --lr 2e-3 --warmup 50 --layers 2 --threads 1 --device cpu --force
[ -f $D/pro/evdsearch_rewriter.json ] || $E train rewriter-pro --deqr $D/deqr --base $D/sft --out $D/pro --steps 250 --max-minutes 0 --batch-size 16 --lr 3e-4 --warmup 30 --threads 1 --device cpu --force
[ -f $D/pro/onnx/decoder_past.onnx ] || $E train export-onnx --rewriter $D/pro
if [ ! -d $D/pro-uncached ]; then  # the same export without the cached decoder: what the code before served
  cp -r $D/pro $D/pro-uncached && rm $D/pro-uncached/onnx/encoder_kv.onnx $D/pro-uncached/onnx/decoder_past.onnx
  "$PY" -c 'import json, sys; p = sys.argv[1]; m = json.load(open(p)); m["format_version"] = 1; json.dump(m, open(p, "w"))' \
    $D/pro-uncached/onnx/export.json
fi
[ -f $D/.kb_cal.pro ] || { $E kb calibrate --kb $D/kb_cal --data $R/world --model $R/clip --rewriter $D/pro --cache-dir $D/cache --device cpu && touch $D/.kb_cal.pro; }
echo done
