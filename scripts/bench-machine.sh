#!/usr/bin/env bash
# What the machine under the benchmarks is doing, measured over time, to tell its
# state from the code's: bench_core's core/machine/walk_8mib (one dependent load in a
# random cycle over 8 MiB of cache lines, about the 100k-key rows' working set: an L3
# hit while the cache is ours, a DRAM access when other tenants of the host have
# taken it) and core/machine/round_trip (a cache line handed between two threads and
# back: how far apart the host placed the two vCPUs). Prints each series in time
# order, then its minimum, median and maximum; for the round trip, the share of
# intervals on near cores (under 250 ns, as scripts/bench-peers.sh classifies rows).
# Usage: scripts/bench-machine.sh [--seconds S] [--interval S] [--json FILE]
# (each series lasts about S seconds, one value per interval; defaults 30 and 0.25).
# SMART_RATELIMIT_BENCH_CORE=<binary> uses an already built bench_core.
set -euo pipefail
bench_name="bench-machine"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

seconds=30
interval=0.25
json_out=""
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    *) bench_usage_error "unknown option $1 (use --seconds S, --interval S, --json FILE)" ;;
  esac
done
bench_require_number --seconds "$seconds"
bench_require_number --interval "$interval"
repetitions=$(python3 -c "import sys; print(max(1, round(float(sys.argv[1]) / float(sys.argv[2]))))" \
  "$seconds" "$interval" 2>/dev/null) || bench_usage_error "--interval must be above 0"

bench_core=${SMART_RATELIMIT_BENCH_CORE:-}
if [[ -z $bench_core ]]; then
  scripts/install-deps.sh --with-bench
  bench_build bench_core
  bench_core=$build/benchmarks/bench_core
fi
[[ -x $bench_core ]] || { echo "bench-machine: $bench_core is not an executable" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "== $repetitions intervals of ${interval} s per series" >&2
"$bench_core" --benchmark_filter='^core/machine/' --benchmark_min_time="$interval" \
  --benchmark_repetitions="$repetitions" --benchmark_format=json >"$out"
python3 - "$out" "$interval" "$json_out" <<'PY'
import json, statistics, sys
runs = [b for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("run_type", "iteration") == "iteration"]
unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
series = {
    "walk_8mib": [b["real_time"] * unit[b.get("time_unit", "ns")] for b in runs
                  if b["run_name"] == "core/machine/walk_8mib"],
    "round_trip": [b["round_trip_ns"] for b in runs
                   if b["run_name"].startswith("core/machine/round_trip")],
}
titles = {"walk_8mib": "one dependent load in 8 MiB (ns)",
          "round_trip": "a cache line's round trip between the two threads' cores (ns)"}
for name, values in series.items():
    if not values:
        sys.exit(f"bench-machine: bench_core gave no {name} values")
    print(f"{titles[name]}, every {sys.argv[2]} s:")
    for i in range(0, len(values), 20):
        print("  " + " ".join(f"{v:5.0f}" for v in values[i:i + 20]))
    print(f"  min {min(values):.1f}, median {statistics.median(values):.1f}, "
          f"max {max(values):.1f}")
near = sum(1 for v in series["round_trip"] if v < 250) / len(series["round_trip"])
print(f"near cores (round trip under 250 ns) in {100 * near:.0f}% of the intervals")
if sys.argv[3]:
    with open(sys.argv[3], "w") as f:
        for name, values in series.items():
            for i, v in enumerate(values):
                f.write(json.dumps({"probe": name, "interval": i, "ns": v}) + "\n")
PY
