#!/usr/bin/env bash
# The import contracts in pyproject.toml, checked on a non-editable build: import-linter finds modules by walking
# the evdsearch/ folder, and only an installed tree has engine/, indexer/, ... inside it (the checkout maps them
# through setup.py's package_dir). Runs from a scratch folder so the checkout's evdsearch/ cannot shadow the build.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
SITE="$(mktemp -d "${TMPDIR:-/tmp}/evdsearch-lint.XXXXXX")"
trap 'rm -rf "$SITE"' EXIT
PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip install -q --no-deps --no-build-isolation --no-compile \
  --target "$SITE/site" "$ROOT" 2>&1 | { grep -v -e '^WARNING: Location' -e '^$' || true; }
cd "$SITE"
export COLUMNS="${COLUMNS:-200}"  # one line per contract in the report
PYTHONPATH="$SITE/site" "$PY" -c "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())" \
  --no-cache "$ROOT/pyproject.toml" "$@"
