#!/usr/bin/env bash
# N `evdsearch serve` replicas of one index on loopback, then `bench serve` on one replica and on all of
# them through gRPC's round_robin. Usage: scripts/replicas.sh INDEX_DIR KB_DIR OUT_DIR [N=3] [BASE_PORT=50611]
#
# Kill test (KILL_AT=S set): instead, `bench soak` runs CLIENTS clients (default 32) for DURATION s (default 60)
# through the client's round robin over all replicas; the first replica is killed with -9 at KILL_AT s and
# started again at RESTART_AT s (default 40). It fails unless the clients saw 0 failed requests and the
# restarted replica answered again (a long-lived client channel got Info from its new generation).
set -euo pipefail
cd "$(dirname "$0")/.."
INDEX=$1 KB=$2 OUT=$3 N=${4:-3} BASE=${5:-50611}
EVD=${EVD:-.venv/bin/evdsearch}
PY=${PY:-$(dirname "$EVD")/python}
BENCH_ARGS=${BENCH_ARGS:---concurrency 1,4,16 --duration 10 --warmup 2}
KILL_AT=${KILL_AT:-} RESTART_AT=${RESTART_AT:-40} DURATION=${DURATION:-60} CLIENTS=${CLIENTS:-32}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start_replica() {  # start_replica I: replica I on port BASE+I, its log appended to OUT/replica-PORT.log
  local port=$((BASE + $1))
  "$EVD" serve --index "$INDEX" --kb "$KB" --port "$port" --device cpu --workers 4 >>"$OUT/replica-$port.log" 2>&1 &
  pids[$1]=$!
}
ready() {  # ready PORT...: every named replica's log has a "serving" line since it was last started
  for port in "$@"; do [ "$(grep -c "serving evdsearch" "$OUT/replica-$port.log" 2>/dev/null)" -ge "${want[$port]}" ] || return 1; done
}
targets=()
declare -A want
mkdir -p "$OUT"
for i in $(seq 0 $((N - 1))); do
  port=$((BASE + i))
  : >"$OUT/replica-$port.log"
  want[$port]=1
  start_replica "$i"
  targets+=("127.0.0.1:$port")
done
list=$(IFS=,; echo "${targets[*]}")
ports=(); for t in "${targets[@]}"; do ports+=("${t##*:}"); done
for _ in $(seq 1 600); do ready "${ports[@]}" && break; sleep 1; done  # CLIP + KB load: minutes on a busy box
ready "${ports[@]}" || { echo "replicas did not start; see $OUT/replica-*.log" >&2; exit 1; }

if [ -n "$KILL_AT" ]; then
  "$EVD" bench soak --server "$list" --clients "$CLIENTS" --duration "$DURATION" --warmup 0 \
      --window "${WINDOW:-5}" --timeout 120 --info-every 0.5 --out "$OUT" --stem failover >"$OUT/failover.log" 2>&1 &
  soak=$!
  until grep -q "load starts" "$OUT/failover.log" 2>/dev/null || ! kill -0 "$soak" 2>/dev/null; do sleep 0.1; done
  sleep "$KILL_AT"
  kill -9 "${pids[0]}"; killed=$(date +%s.%N)
  sleep $((RESTART_AT - KILL_AT))
  want[${ports[0]}]=2
  start_replica 0; restarted=$(date +%s.%N)
  until ready "${ports[0]}" || ! kill -0 "$soak" 2>/dev/null; do sleep 0.2; done
  back=$(date +%s.%N)
  wait "$soak" || { echo "bench soak failed; see $OUT/failover.log" >&2; exit 1; }
  status=0
  "$PY" - "$OUT/failover.json" "$killed" "$restarted" "$back" <<'EOF' || status=$?
import json, sys
from datetime import datetime
result = json.load(open(sys.argv[1]))
t0 = result["t0_epoch"]
killed, restarted, back = (float(x) - t0 for x in sys.argv[2:5])
new = [w for w in result["windows"] if any(datetime.fromisoformat(s).timestamp() >= float(sys.argv[3]) - 1
                                           for s in w["servers"])]
rejoined = new[0]["t_s"] if new else None
print(f"{result['requests']} requests, {result['errors']} failed {result['error_codes'] or ''}; Info calls failed: "
      f"{sum(result['info_errors'].values())}; replica 1 killed -9 at +{killed:.1f} s, restarted at +{restarted:.1f} s, "
      f"ready at +{back:.1f} s; its new generation answered the clients' round robin "
      + (f"in the window ending +{rejoined:g} s" if rejoined else "never"))
print("generations seen per window: " + " ".join(f"{len(w['servers'])}" for w in result["windows"]))
sys.exit(0 if result["errors"] == 0 and not result["info_errors"] and rejoined else 1)
EOF
  exit "$status"
fi
# shellcheck disable=SC2086
"$EVD" bench serve --server "${targets[0]}" $BENCH_ARGS --timeout 120 --out "$OUT" --stem one_replica
# shellcheck disable=SC2086
"$EVD" bench serve --server "ipv4:$list" $BENCH_ARGS --timeout 120 --out "$OUT" --stem round_robin_$N
grep -h "serving" "$OUT"/replica-*.log
