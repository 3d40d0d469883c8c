#!/usr/bin/env bash
# The cost of recording an event on the request path: runs bench_sinks (Google
# Benchmark, Release) and prints ns per event offered to the async sink with one and
# two producer threads (CPU and wall time), next to the bare baseline measured in the
# same run (copy the event, lock a mutex, push into a reserved vector), the ratio,
# and the 100 ns goal.
# Each case runs --rounds times (default 3) and the best round counts (damps noise).
# Usage: scripts/bench-sinks.sh [--rounds N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

rounds=3
seconds=0.5
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "bench-sinks: unknown option $1 (use --rounds N, --seconds S)" >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench-sinks: --rounds must be a positive integer, got '$rounds'" >&2; exit 2; }
[[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench-sinks: --seconds must be a number, got '$seconds'" >&2; exit 2; }

scripts/install-deps.sh --with-bench
build=${SMART_RATELIMIT_BENCH_BUILD_DIR:-$root/build-bench}
jobs=${SMART_RATELIMIT_JOBS:-2}

echo "== building bench_sinks (Release)" >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_EXAMPLES=OFF \
  -DSMART_RATELIMIT_BUILD_TOOLS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j "$jobs" --target bench_sinks >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds" >&2
  "$build/benchmarks/bench_sinks" --benchmark_format=json --benchmark_min_time="$seconds" \
    >"$out/round-$r.json"
done

python3 - "$out"/round-*.json <<'PY'
import json, sys
best = {}
for path in sys.argv[1:]:
    for b in json.load(open(path))["benchmarks"]:
        name = b["name"]
        if name not in best or b["real_time"] < best[name]["real_time"]:
            best[name] = b
def ns(b):
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[b["time_unit"]]
    return b["real_time"] * scale, b["cpu_time"] * scale
print(f"{'case':44} {'threads':>7} {'cpu ns':>7} {'wall ns':>8} {'baseline':>9} {'ratio':>6} {'queue_full%':>11} {'goal':>10}")
for name, b in sorted(best.items()):
    if not name.startswith(("BM_async_record", "BM_ring_record")):
        continue
    threads = b.get("threads", 1)
    real, cpu = ns(b)
    if name.startswith("BM_async_record_burst/"):  # one iteration = a burst of N events
        n = int(name.split("/")[1])
        real, cpu = real / n, cpu / n
    base = best.get(f"BM_mutex_vector_push/real_time/threads:{threads}")
    base_cpu = ns(base)[1] if base else float("nan")
    ratio = cpu / base_cpu if base else float("nan")
    goal = ""
    if name.startswith(("BM_async_record_move/0/", "BM_async_record_burst/")):
        goal = "<100 " + ("met" if cpu < 100 else "MISSED")
    qf = b.get("queue_full_%")
    qf = f"{qf:.1f}" if qf is not None else "-"
    print(f"{name.split('/real_time')[0]:44} {threads:>7} {cpu:>7.1f} {real:>8.1f} {base_cpu:>9.1f} {ratio:>6.2f} {qf:>11} {goal:>10}")
print("Per event offered, the event built from a copy of a prototype included. cpu ns: CPU time of"
      " the producer thread (the cost to the request; the goal is judged on it); wall ns: elapsed"
      " time per event per thread, which also counts time spent waiting for a core or the lock"
      " (large when other work shares the machine: compare the load average)."
      " baseline: copy + std::mutex + push into a reserved vector, same thread count, cpu ns."
      " /0: short (SSO) strings, /1: long strings; burst/N: N events per iteration then an"
      " untimed flush, so every event is accepted (no queue_full).")
PY
