#!/usr/bin/env bash
# Remake the PRO rewriter that ships with evdsearch for the quickstart, from a fresh clone:
#   bash scripts/bootstrap.sh && scripts/quickstart_rewriter.sh [KB] [OUT] [WORKDIR]
# KB: what `evdsearch quickstart --kb-source` imports: llm (default, the shipped LLM-written descriptions),
# encyclopedia (the world's own text) or a JSONL path; the rewriter's DEQR data is built from it, and its
# clip_pin.json names it. OUT (default evdsearch/shipped/quickstart-rewriter, the package data the quickstart
# loads) receives the torch weights + tokenizer (~6 MB), pinned to the quickstart CLIP.
# WORKDIR (default runs/quickstart-rewriter) holds the world, the CLIP (seed 0, `train clip` defaults: the same
# fingerprint as every quickstart's) and the training stages; a rerun resumes. About 25 min on a quiet 2-core
# box, 8 more for the CLIP when WORKDIR is new (copying a built runs/quickstart there skips those stages).
set -euo pipefail
KB=${1:-llm}
OUT=${2:-evdsearch/shipped/quickstart-rewriter}
W=${3:-runs/quickstart-rewriter}
cd "$(dirname "$0")/.."
E=${EVDSEARCH:-.venv/bin/evdsearch}
PY=${PYTHON:-.venv/bin/python}
"$E" quickstart --workdir "$W" --kb-source "$KB" --train-rewriter --no-serve
FILE=$("$PY" -c 'import sys; from pathlib import Path; from evdsearch.quickstart import QuickstartLayout, kb_source_file
print(kb_source_file(QuickstartLayout(Path(sys.argv[1])), sys.argv[2]))' "$W" "$KB")
"$PY" -m evdsearch.training.rewriter.ship "$W/rw/pro" "$OUT" --clip "$W/clip" --kb-source "$FILE"
