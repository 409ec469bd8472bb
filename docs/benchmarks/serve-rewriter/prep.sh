#!/usr/bin/env bash
# benchmark parts on seed 7311: text ONNX export, test index, KB copy calibrated (template first: caches image embeddings)
set -euo pipefail
E=/work/wt-rewriter/.venv/bin/evdsearch
R=/work/seeds/s7311
D=/work/rwdev
[ -f $D/clip-onnx/clip_text.onnx ] || $E train export-onnx --clip $R/clip --clip-out $D/clip-onnx
[ -f $D/index/current/manifest.json ] || $E index $R/world/dataset_shapes.json --split test --out $D/index --model $R/clip --no-progress
[ -f $D/kb_cal/current/data.mdb ] || $E kb import $R/world/encyclopedia.jsonl --kb $D/kb_cal
[ -f $D/.kb_cal.template ] || { $E kb calibrate --kb $D/kb_cal --data $R/world --model $R/clip --cache-dir $D/cache --device cpu && touch $D/.kb_cal.template; }
echo prep done
