#!/usr/bin/env bash
# The cost of metrics on the request path: runs bench_metrics (Google Benchmark,
# Release) once, its cases interleaved at random over --repetitions rounds, and prints
# for 1 and 2 threads the in-memory limiter's ns per decision with null_observer and
# with decision_metrics (medians, CPU time), the ratio on/off against the 1.05 goal
# (paired by repetition round), the same ratio for a control observer that does ~1 ns of
# work and shares nothing; the same for allow() on the lock-free storage, beside
# metrics told whole decisions; the observer's own cost, and the time of one scrape of
# 1,000 rules against the 5 ms goal.
# Usage: scripts/bench-metrics.sh [--repetitions N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

repetitions=21
seconds=0.25
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
  >"$out/run.json"

python3 - "$out/run.json" <<'PY'
import json, statistics, sys
reps = {}  # run name -> {repetition: (cpu ns, wall ns)}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type") != "iteration":
        continue
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[b["time_unit"]]
    reps.setdefault(b["run_name"], {})[b["repetition_index"]] = (b["cpu_time"] * scale,
                                                                 b["real_time"] * scale)
def median(name, i):
    r = reps.get(name)
    return statistics.median(v[i] for v in r.values()) if r else None
def paired(a, b, i):
    # The median over rounds of a's time / b's time in the same round: each round runs
    # every case once, in a random order, so the two shared the machine's state.
    ra, rb = reps.get(a), reps.get(b)
    if not ra or not rb:
        return None
    return statistics.median(ra[k][i] / rb[k][i] for k in ra if k in rb)
def table(title, prefix, other):
    # on and off, and a third variant `other`, of limiter calls named prefix/CASE/VARIANT.
    print(f"{title:12} {'threads':>7} {'off cpu':>8} {'on cpu':>8} {'on/off':>7} {'goal':>12}"
          f" {other + '/off':>11} {'wall on/off':>11}")
    for case in ("hot_key", "keys_100k"):
        for t in (1, 2):
            name = lambda v: f"{prefix}/{case}/{v}/real_time/threads:{t}"
            if name("off") not in reps or name("on") not in reps:
                continue
            r = paired(name("on"), name("off"), 0)
            ro = paired(name(other), name("off"), 0)
            goal = "<=1.05 " + ("met" if r <= 1.05 else "MISSED")
            print(f"{case:12} {t:>7} {median(name('off'), 0):>8.1f} {median(name('on'), 0):>8.1f}"
                  f" {r:>7.3f} {goal:>12} {'-' if ro is None else f'{ro:.3f}':>11}"
                  f" {paired(name('on'), name('off'), 1):>11.3f}")
table("check", "metrics", "control")
table("allow", "metrics/allow", "whole")
for t in (1, 2):
    o = median(f"metrics/observer_only/real_time/threads:{t}", 0)
    if o is not None:
        print(f"observer alone (on_decision with a timer), {t} thread(s): {o:.2f} ns cpu")
scrape = median("metrics/scrape_1000_rules", 1)
if scrape is not None:
    ms = scrape / 1e6
    print(f"scrape of 1,000 rules: {ms:.2f} ms (goal < 5 ms: {'met' if ms < 5 else 'MISSED'})")
print("ns per decision per thread (limiter.check with a steady clock read, token bucket, in-memory"
      " storage): medians of the repetitions, CPU time of the checking thread (the cost to the"
      " request). off: null_observer; on: decision_metrics with the default time_every; control: a"
      " ~1 ns observer that shares nothing (what any work after the decision costs: on one key from"
      " 2 threads it shifts the hand-over of the key's lock, so compare the on ratio with it)."
      " Ratios are paired: each repetition round runs every case once in a random order, and the"
      " ratio is the median over rounds of the two cases' times in the same round, so drift in the"
      " machine's speed between rounds cancels. The goal is judged on CPU time; the wall ratio also"
      " counts waiting for a core or the key's lock.")
print("allow: limiter.allow on concurrent_storage<gcra> (lock-free; each thread walks the keys in"
      " its own random order), where decision_metrics hears the outcome alone (on_outcome) and"
      " allow keeps its short path; whole: the same metrics told whole decisions only, so allow"
      " builds the verdict check builds (what allow with metrics cost before the outcome-only"
      " form).")
PY
