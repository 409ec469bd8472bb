#!/usr/bin/env bash
# A Milvus outage under load: a milvus-lite server (its own process), a Milvus-backed index on it served by
# `evdsearch serve`, `bench soak` against that; the Milvus process is stopped (kill -9, or SIGSTOP with
# MODE=pause) at STOP_AT s for STOP_FOR s, then started (continued) again. Fails unless every failed search was
# UNAVAILABLE within its deadline and searches succeeded again within 5 s of Milvus' return.
# Usage: scripts/milvus_outage.sh SOURCE CLIP OUT_DIR [MILVUS_PORT=19540] [SERVE_PORT=50641]
#   SOURCE: image folder or Karpathy JSON (SPLIT=test picks a split); CLIP: checkpoint folder; KB=DIR optional.
#   env: STOP_AT (20), STOP_FOR (20), DURATION (60), CLIENTS (32), TIMEOUT (10), MODE (kill | pause).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=$1 CLIP=$2 OUT=$3 MPORT=${4:-19540} SPORT=${5:-50641}
EVD=${EVD:-.venv/bin/evdsearch}
PY=${PY:-$(dirname "$EVD")/python}
MILVUS=${MILVUS:-$(dirname "$EVD")/milvus-lite}
STOP_AT=${STOP_AT:-20} STOP_FOR=${STOP_FOR:-20} DURATION=${DURATION:-60} CLIENTS=${CLIENTS:-32}
TIMEOUT=${TIMEOUT:-10} MODE=${MODE:-kill}
pids=()
cleanup() { for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
mkdir -p "$OUT"
port_open() { "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" "$1" 2>/dev/null; }
start_milvus() {
  "$MILVUS" server --data-dir "$OUT/milvus" --host 127.0.0.1 --port "$MPORT" >>"$OUT/milvus.log" 2>&1 &
  milvus=$!; pids+=("$milvus")
  for _ in $(seq 1 600); do port_open "$MPORT" && return 0; sleep 0.1; done
  echo "milvus-lite did not start; see $OUT/milvus.log" >&2; exit 1
}
start_milvus
"$EVD" index "$SOURCE" ${SPLIT:+--split "$SPLIT"} --out "$OUT/index" --model "$CLIP" --backend milvus \
    --milvus-uri "http://127.0.0.1:$MPORT" --force --device cpu --no-progress >"$OUT/index.log" 2>&1
"$EVD" serve --index "$OUT/index" ${KB:+--kb "$KB"} --port "$SPORT" --device cpu --workers 8 >"$OUT/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do grep -q "serving evdsearch" "$OUT/serve.log" && break; sleep 1; done
"$PY" - "127.0.0.1:$SPORT" >"$OUT/health.log" 2>&1 <<'EOF' &
import sys, time, grpc
from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g
stub, last = g.HealthStub(grpc.insecure_channel(sys.argv[1])), None
while True:  # one line per change: epoch status
    try:
        status = h.HealthCheckResponse.ServingStatus.Name(stub.Check(h.HealthCheckRequest(service="evdsearch.v1.SearchService"), timeout=2).status)
    except grpc.RpcError as err:
        status = err.code().name
    if status != last:
        print(f"{time.time():.3f} {status}", flush=True)
        last = status
    time.sleep(0.2)
EOF
pids+=($!)
"$EVD" bench soak --server "127.0.0.1:$SPORT" --clients "$CLIENTS" --duration "$DURATION" --warmup 0 --window 5 \
    --timeout "$TIMEOUT" --out "$OUT" --stem milvus_outage >"$OUT/soak.log" 2>&1 &
soak=$!
until grep -q "load starts" "$OUT/soak.log" 2>/dev/null || ! kill -0 "$soak" 2>/dev/null; do sleep 0.1; done
sleep "$STOP_AT"
if [ "$MODE" = pause ]; then kill -STOP "$milvus"; else kill -9 "$milvus"; fi
stopped=$(date +%s.%N)
sleep "$STOP_FOR"
if [ "$MODE" = pause ]; then kill -CONT "$milvus"; else start_milvus; fi
back=$(date +%s.%N)
wait "$soak" || { echo "bench soak failed; see $OUT/soak.log" >&2; exit 1; }
status=0
"$PY" - "$OUT/milvus_outage.json" "$OUT/health.log" "$stopped" "$back" "$TIMEOUT" <<'EOF' || status=$?
import json, sys
result = json.load(open(sys.argv[1]))
t0, stopped, back, timeout = result["t0_epoch"], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
health = [line.split() for line in open(sys.argv[2]) if line.strip()]
changes = ", ".join(f"{s} at {float(t) - t0:+.1f} s" for t, s in health if float(t) >= t0 - 1)
failures = result["failures"]
codes = result["error_codes"]
last = failures["last_s"]
recovered = None if last is None else last - (back - t0)  # the last failed call ended this long after the return
clean = [w["t_s"] for w in result["windows"] if w["t_s"] - 1 > back - t0 and w["errors"] == 0 and w["requests"]]
print(f"{result['requests']} requests, {result['errors']} failed {codes}; Milvus stopped at +{stopped - t0:.1f} s, "
      f"back at +{back - t0:.1f} s; longest failed call {failures['max_latency_ms'] / 1000:.1f} s "
      f"(deadline {timeout:g} s); last failed call ended {0 if recovered is None else recovered:+.1f} s from Milvus' "
      f"return; windows without errors from the one ending +{clean[0] if clean else float('nan'):g} s; "
      f"health: {changes}")
ok = set(codes) <= {"UNAVAILABLE"} and failures["max_latency_ms"] / 1000 < timeout and (recovered or 0) <= 5
sys.exit(0 if ok and result["windows"][-1]["errors"] == 0 else 1)
EOF
exit "$status"
