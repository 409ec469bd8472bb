#!/usr/bin/env bash
# Issue 23's benchmark parts, from a fresh clone (after `bash scripts/bootstrap.sh`):
#   docs/benchmarks/serve-rewriter/prep.sh [ROOT] [WORK]
# ROOT (default runs/s7311): a world root; its world (`world make --seed 7311`) and CLIP (`train clip`, 500
# steps) are made when absent. WORK (default runs/rwdev): the CLIP text tower's ONNX export, the test index
# and a KB copy calibrated with the template rewriter (it caches the image embeddings). Stages already done
# are skipped. Then dev_rewriter.sh trains the rewriter and bench.sh runs the servers.
set -euo pipefail
cd "$(dirname "$0")/../../.."
E=${EVDSEARCH:-.venv/bin/evdsearch}
R=${1:-runs/s7311}
D=${2:-runs/rwdev}
[ -f $R/world/world.json ] || $E world make --out $R/world --seed 7311
[ -f $R/clip/open_clip_config.json ] || $E train clip --data $R/world --model evd-tiny --out $R/clip --seed 7311 --resume
[ -f $D/clip-onnx/clip_text.onnx ] || $E train export-onnx --clip $R/clip --clip-out $D/clip-onnx
[ -f $D/index/current/manifest.json ] || $E index $R/world/dataset_shapes.json --split test --out $D/index --model $R/clip --no-progress
[ -f $D/kb_cal/current/data.mdb ] || $E kb import $R/world/encyclopedia.jsonl --kb $D/kb_cal
[ -f $D/.kb_cal.template ] || { $E kb calibrate --kb $D/kb_cal --data $R/world --model $R/clip --cache-dir $D/cache --device cpu && touch $D/.kb_cal.template; }
echo prep done
