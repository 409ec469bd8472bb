#!/usr/bin/env bash
# The served quality configuration (PRO rewriter ensembled with the template, adaptive fusion) against
# clip-retrieval's clip-back, fp32 text towers, on one ViT-B-32 index (random weights: speed does not depend on
# them), after `evdsearch quickstart --no-serve` and the peer venv of docs/benchmarks/README.md (runs/peer-venv).
# The rewriter is the shipped one without its CLIP pin (speed only: its rewrites are meant for the quickstart
# CLIP); the KB is the quickstart's. Cold queries, cells interleaved.
#   docs/benchmarks/serve-rewriter/bench_clip_back.sh [OUT] [STEM]
set -euo pipefail
cd "$(dirname "$0")/../../.."
E=${EVDSEARCH:-.venv/bin/evdsearch}
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-docs/benchmarks/serve-rewriter}
STEM=${2:-serve_vitb32_pro_vs_clip_back}
V=runs/vitb32 W=runs/quickstart WEIGHTS=runs/bench-models/vit-b-32-random.pt
mkdir -p runs/bench-models $V
[ -f $WEIGHTS ] || $PY -c "import open_clip, torch; torch.save(open_clip.create_model('ViT-B-32').state_dict(), '$WEIGHTS')"
[ -f $V/index/manifest.json ] || $E index $W/world/dataset_shapes.json --split test --out $V/index --model ViT-B-32 \
  --pretrained $WEIGHTS
[ -f $V/text-onnx/clip_text.onnx ] || $E train export-onnx --clip ViT-B-32 --clip-pretrained $WEIGHTS --clip-out $V/text-onnx
rm -rf $V/rewriter && cp -r $W/rewriter-shipped $V/rewriter && rm $V/rewriter/clip_pin.json
mkdir -p $V/clip-inference/img_emb $V/clip-inference/metadata   # clip-inference's layout, from our index's vectors
runs/peer-venv/bin/python -c "
import json, numpy as np, pandas as pd
e = np.load('$V/index/current/embeddings.npy')
np.save('$V/clip-inference/img_emb/img_emb_0.npy', e.astype(np.float16))
pd.DataFrame({'image_path': [json.loads(l)['uri'] for l in open('$V/index/current/items.jsonl')]}).to_parquet(
    '$V/clip-inference/metadata/metadata_0.parquet')"
pids=()
$PY -m evdsearch.benchmarks.peer_clip_back --peer-venv runs/peer-venv --embeddings $V/clip-inference \
  --clip-model open_clip:ViT-B-32/$PWD/$WEIGHTS --work $V/clip-back --port 12391 > $V/clip-back.out 2>&1 & pids+=($!)
$E serve --index $V/index --kb $W/kb --rewriter $V/rewriter --text-onnx $V/text-onnx --port 50171 > $V/pro.log 2>&1 & pids+=($!)
$E serve --index $V/index --kb $W/kb --rewriter template --text-onnx $V/text-onnx --port 50172 > $V/template.log 2>&1 & pids+=($!)
trap 'kill ${pids[@]} 2>/dev/null' EXIT
for f in pro template; do for i in $(seq 300); do grep -q "serving evdsearch" $V/$f.log && break; sleep 1; done; done
for i in $(seq 300); do grep -q "clip-back serving" $V/clip-back.out && break; sleep 1; done
$E bench serve --server 127.0.0.1:50171 --label pro --also template=127.0.0.1:50172 --peer 127.0.0.1:12391 \
  --mode fused --workloads cold --queries docs/benchmarks/serve-speed/queries.txt --concurrency 1,16 \
  --duration 5 --warmup 1 --rounds 3 --timeout 60 --explain-every 8 \
  --machine "${MACHINE:-2-core AMD EPYC CPU, no GPU}" --out $OUT --stem $STEM
