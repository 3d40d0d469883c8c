#!/usr/bin/env bash
# Decisions/s of the Redis storage next to redis-benchmark running the same EVALSHA
# (the fixed-window script, one key) against the same private redis-server, in the
# same run: one connection unpipelined, 4 connections, and one connection with 16
# commands per pipeline. Prints the ratios; the goal is >= 80% of redis-benchmark's
# rate with pipelining. The server is started on a free 127.0.0.1 port and stopped by PID.
# The machine may be shared: both sides run --rounds times, interleaved, best of each.
# Usage: scripts/bench-redis.sh [--requests N] [--seconds S] [--rounds N]
set -euo pipefail
bench_name="bench-redis"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

requests=200000
seconds=2
rounds=3
while (($#)); do
  case $1 in
    --requests) requests=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) bench_usage_error "unknown option $1 (use --requests N, --seconds S, --rounds N)" ;;
  esac
done
bench_require_count --requests "$requests"
bench_require_count --rounds "$rounds"
bench_require_number --seconds "$seconds"
command -v redis-server >/dev/null || { echo "bench-redis: redis-server not found" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "bench-redis: redis-benchmark not found" >&2; exit 1; }

bench_build bench_redis
bench="$build/benchmarks/bench_redis"

work=$(mktemp -d /tmp/srl-bench-redis.XXXXXX)
port=$(free_port)
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$work" \
  --daemonize no >"$work/redis.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

sha=$(redis-cli -p "$port" SCRIPT LOAD "$("$bench" --print-script)")
key='bench:{k}:fw'
args=(EVALSHA "$sha" 1 "$key" 0 1000000000 3600000000 1)
# A sanity check: the script answers as the storage expects.
redis-cli -p "$port" "${args[@]}" >/dev/null

rb() {  # redis-benchmark requests/s for: clients pipeline
  redis-benchmark -p "$port" -n "$requests" -c "$1" -P "$2" --csv "${args[@]}" 2>/dev/null |
    tail -n1 | cut -d, -f2 | tr -d '"'
}
best() {  # the larger of two rates
  python3 -c 'import sys; print(max(float(sys.argv[1] or 0), float(sys.argv[2] or 0)))' "$1" "$2"
}
rb_one=0; rb_pool=0; rb_pipe=0
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds: redis-benchmark" >&2
  rb_one=$(best "$rb_one" "$(rb 1 1)")
  rb_pool=$(best "$rb_pool" "$(rb 4 1)")
  rb_pipe=$(best "$rb_pipe" "$(rb 1 16)")
  echo "== round $r of $rounds: bench_redis" >&2
  SMART_RATELIMIT_BENCH_REDIS_URL="redis://127.0.0.1:$port" "$bench" --benchmark_format=json \
    --benchmark_min_time="$seconds" >"$work/bench-$r.json"
done

python3 - "$rb_one" "$rb_pool" "$rb_pipe" "$work"/bench-*.json <<'PY'
import json, sys
results = [b for path in sys.argv[4:] for b in json.load(open(path))["benchmarks"]]
def rate(prefix):
    rates = [b["items_per_second"] for b in results if b["name"].startswith(prefix)]
    if not rates:
        raise SystemExit(f"bench-redis: no result for {prefix}")
    return max(rates)
rows = [
    ("one connection, no pipeline", rate("BM_redis_one_connection"), float(sys.argv[1]), "redis-benchmark -c 1 -P 1", None),
    ("pool, 4 threads / 4 clients", rate("BM_redis_pooled"), float(sys.argv[2]), "redis-benchmark -c 4 -P 1", None),
    ("pipelined, 16 per batch", rate("BM_redis_pipelined"), float(sys.argv[3]), "redis-benchmark -c 1 -P 16", 0.8),
]
print(f"{'case':32} {'ours/s':>10} {'redis-benchmark/s':>18} {'ratio':>6}  baseline / goal")
ok = True
for name, ours, base, how, goal in rows:
    ratio = ours / base if base > 0 else 0.0
    verdict = ""
    if goal is not None:
        verdict = f"goal >= {goal:.0%}: " + ("met" if ratio >= goal else "NOT met")
        ok = ok and ratio >= goal
    print(f"{name:32} {ours:10.0f} {base:18.0f} {ratio:6.2f}  {how}  {verdict}")
PY
