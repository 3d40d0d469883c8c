#!/usr/bin/env bash
# The cost of metrics on the request path: runs bench_metrics (Google Benchmark,
# Release) once, its cases interleaved at random over --repetitions rounds, and prints
# for 1 and 2 threads the in-memory limiter's ns per decision with null_observer and
# with decision_metrics (medians, CPU and wall time), the ratio on/off against the 1.05
# goal (judged on CPU time), the same ratio for a control observer that does ~1 ns of
# work and shares nothing, the observer's own cost, and the time of one scrape of
# 1,000 rules against the 5 ms goal.
# Usage: scripts/bench-metrics.sh [--repetitions N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

repetitions=7
seconds=0.3
while (($#)); do
  case $1 in
    --repetitions) repetitions=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "bench-metrics: unknown option $1 (use --repetitions N, --seconds S)" >&2; exit 2 ;;
  esac
done
[[ $repetitions =~ ^[1-9][0-9]*$ ]] || { echo "bench-metrics: --repetitions must be a positive integer, got '$repetitions'" >&2; exit 2; }
[[ $seconds =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "bench-metrics: --seconds must be a number, got '$seconds'" >&2; exit 2; }

scripts/install-deps.sh
build=${SMART_RATELIMIT_BENCH_BUILD_DIR:-$root/build-bench}
jobs=${SMART_RATELIMIT_JOBS:-2}

echo "== building bench_metrics (Release)" >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_EXAMPLES=OFF \
  -DSMART_RATELIMIT_BUILD_TOOLS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j "$jobs" --target bench_metrics >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== running ($repetitions interleaved repetitions)" >&2
"$build/benchmarks/bench_metrics" --benchmark_format=json --benchmark_min_time="$seconds" \
  --benchmark_repetitions="$repetitions" --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true >"$out/run.json"

python3 - "$out/run.json" <<'PY'
import json, sys
runs = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("aggregate_name") != "median":
        continue
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[b["time_unit"]]
    runs[b["run_name"]] = (b["cpu_time"] * scale, b["real_time"] * scale)
print(f"{'case':12} {'threads':>7} {'off cpu':>8} {'on cpu':>8} {'ratio':>6} {'goal':>12} {'control':>8} {'off wall':>9} {'on wall':>8} {'ratio':>6}")
for case in ("hot_key", "keys_100k"):
    for t in (1, 2):
        off = runs.get(f"metrics/{case}/off/real_time/threads:{t}")
        on = runs.get(f"metrics/{case}/on/real_time/threads:{t}")
        control = runs.get(f"metrics/{case}/control/real_time/threads:{t}")
        if off is None or on is None:
            continue
        r = on[0] / off[0]
        rw = on[1] / off[1]
        rc = f"{control[0] / off[0]:.3f}" if control else "-"
        goal = "<=1.05 " + ("met" if r <= 1.05 else "MISSED")
        print(f"{case:12} {t:>7} {off[0]:>8.1f} {on[0]:>8.1f} {r:>6.3f} {goal:>12} {rc:>8} {off[1]:>9.1f} {on[1]:>8.1f} {rw:>6.3f}")
for t in (1, 2):
    o = runs.get(f"metrics/observer_only/real_time/threads:{t}")
    if o is not None:
        print(f"observer alone (time_next + on_decision), {t} thread(s): {o[0]:.2f} ns cpu")
scrape = runs.get("metrics/scrape_1000_rules")
if scrape is not None:
    ms = scrape[1] / 1e6
    print(f"scrape of 1,000 rules: {ms:.2f} ms (goal < 5 ms: {'met' if ms < 5 else 'MISSED'})")
print("Medians of interleaved repetitions, ns per decision per thread (limiter.check with a steady"
      " clock read, token bucket, in-memory storage). off: null_observer; on: decision_metrics with"
      " the default time_every; control: a ~1 ns observer that shares nothing, cpu ratio to off"
      " (what any work after the decision costs: on one key from 2 threads it shifts the hand-over"
      " of the key's lock, so compare the on ratio with it). cpu: CPU time of the checking thread (the cost to the request; the"
      " goal is judged on it); wall: elapsed time, which also counts waiting for a core or the"
      " key's lock (large when other work shares the machine: compare the load average).")
PY
