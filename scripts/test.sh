#!/usr/bin/env bash
# The test command: bootstrap the venv, check generated code, lint and import layers, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python scripts/gen_proto.py --check
.venv/bin/ruff check .
bash scripts/lint_imports.sh  # the import contracts in pyproject.toml, on a non-editable build
exec .venv/bin/python -m pytest -q "$@"
