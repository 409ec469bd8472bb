#!/usr/bin/env bash
# The mixed soak: `evdsearch serve` over copies of a quickstart's index and KB, and `bench soak --mixed` against
# it: CLIENTS clients search for DURATION s while index add / delete, kb import, kb calibrate and a reload after
# each run in a loop. Usage: scripts/mixed_soak.sh QUICKSTART_DIR OUT_DIR [DURATION=1800] [CLIENTS=32] [PORT=50651]
# (QUICKSTART_DIR from `evdsearch quickstart --small --no-serve --workdir DIR`: world/, clip/, index/, kb/).
set -euo pipefail
cd "$(dirname "$0")/.."
QS=$1 OUT=$2 DURATION=${3:-1800} CLIENTS=${4:-32} PORT=${5:-50651}
EVD=${EVD:-.venv/bin/evdsearch}
WARMUP=${WARMUP:-120} WINDOW=${WINDOW:-60}
mkdir -p "$OUT/extra"
rm -rf "$OUT/index" "$OUT/kb"
cp -a "$QS/index" "$OUT/index"   # the writer changes these copies, never the quickstart's own folders
cp -a "$QS/kb" "$OUT/kb"
for i in 0 1 2 3 4 5 6 7; do cp "$QS/world/images/val/00000$i.png" "$OUT/extra/"; done
"$EVD" serve --index "$OUT/index" --kb "$OUT/kb" --port "$PORT" --device cpu --workers 4 >"$OUT/serve.log" 2>&1 &
serve=$!
trap 'kill "$serve" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -q "serving evdsearch" "$OUT/serve.log" && break; sleep 1; done
"$EVD" bench soak --server "127.0.0.1:$PORT" --clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" \
    --window "$WINDOW" --timeout 60 --server-pid "$serve" --mixed --index "$OUT/index" --kb "$OUT/kb" \
    --add-images "$OUT/extra" --calibrate-data "$QS/world" --calibrate-model "$QS/clip" --calibrate-every 3 \
    --writer-pause 10 --out "$OUT" --stem "mixed_soak_${CLIENTS}clients"
"$EVD" verify "$OUT/index" && "$EVD" verify "$OUT/kb"
