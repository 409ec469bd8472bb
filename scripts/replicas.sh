#!/usr/bin/env bash
# N `evdsearch serve` replicas of one index on loopback, then `bench serve` on one replica and on all of
# them through gRPC's round_robin. Usage: scripts/replicas.sh INDEX_DIR KB_DIR OUT_DIR [N=3] [BASE_PORT=50611]
set -euo pipefail
cd "$(dirname "$0")/.."
INDEX=$1 KB=$2 OUT=$3 N=${4:-3} BASE=${5:-50611}
EVD=${EVD:-.venv/bin/evdsearch}
BENCH_ARGS=${BENCH_ARGS:---concurrency 1,4,16 --duration 10 --warmup 2}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
targets=()
mkdir -p "$OUT"
for i in $(seq 0 $((N - 1))); do
  port=$((BASE + i))
  "$EVD" serve --index "$INDEX" --kb "$KB" --port "$port" --device cpu --workers 4 >"$OUT/replica-$port.log" 2>&1 &
  pids+=($!)
  targets+=("127.0.0.1:$port")
done
list=$(IFS=,; echo "${targets[*]}")
for i in $(seq 1 600); do  # each replica loads CLIP + KB first: minutes on a busy 2-core box
  [ "$(grep -l "serving" "$OUT"/replica-*.log 2>/dev/null | wc -l)" -ge "$N" ] && break
  sleep 1
done
# shellcheck disable=SC2086
"$EVD" bench serve --server "${targets[0]}" $BENCH_ARGS --timeout 120 --out "$OUT" --stem one_replica
# shellcheck disable=SC2086
"$EVD" bench serve --server "ipv4:$list" $BENCH_ARGS --timeout 120 --out "$OUT" --stem round_robin_$N
grep -h "serving" "$OUT"/replica-*.log
