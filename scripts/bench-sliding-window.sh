#!/usr/bin/env bash
# What a denied request costs the exact sliding window, before and after its O(log n)
# rewrite, in one run: builds benchmarks/bench_sliding_window against this tree and,
# as bench_sliding_window_baseline, against the include/ of --before REV (default
# 9b1ab5b, the last tree whose denials read the whole window); runs both --rounds times,
# interleaved, against one private Redis and PostgreSQL (scripts/test-servers.sh) and
# SQLite files; prints denials/s (best of the rounds) and the store's work per denial
# (counted, not timed) at limits 10, 1,000 and 100,000, the after/before ratios, how
# flat each is in the limit, and the load average before and after.
# Usage: scripts/bench-sliding-window.sh [--before REV] [--rounds N] [--seconds S]
set -euo pipefail
bench_name="bench-sliding-window"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

before=9b1ab5b
rounds=3
seconds=1
while (($#)); do
  case $1 in
    --before) before=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) bench_usage_error "unknown option $1 (use --before REV, --rounds N, --seconds S)" ;;
  esac
done
bench_require_count --rounds "$rounds"
bench_require_number --seconds "$seconds"
git rev-parse --verify --quiet "$before^{commit}" >/dev/null ||
  bench_usage_error "--before $before is not a commit of this repository"

# The older tree's headers, next to the build that compiles against them.
baseline="$build/sliding-window-baseline"
rm -rf "$baseline"
mkdir -p "$baseline"
git archive "$before" include | tar -x -C "$baseline"

echo "== building bench_sliding_window and its baseline at $before (Release)" >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_EXAMPLES=OFF \
  -DSMART_RATELIMIT_BUILD_TOOLS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=ON \
  -DSMART_RATELIMIT_BENCH_BASELINE_INCLUDE="$baseline/include" >/dev/null
cmake --build "$build" -j "$jobs" --target bench_sliding_window bench_sliding_window_baseline \
  >/dev/null

work=$(mktemp -d /tmp/srl-bench-sw.XXXXXX)
trap 'rm -rf "$work"' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# One pair of servers for every run; each run keeps to its own keys and database.
# shellcheck disable=SC2016 # the inner script expands its variables itself
BEFORE="$build/benchmarks/bench_sliding_window_baseline" \
AFTER="$build/benchmarks/bench_sliding_window" \
ROUNDS=$rounds SECONDS_EACH=$seconds OUT=$work \
  scripts/test-servers.sh bash -c '
    for ((r = 1; r <= ROUNDS; r++)); do
      for side in before after; do
        echo "== round $r of $ROUNDS: $side" >&2
        bin=$BEFORE; [[ $side == after ]] && bin=$AFTER
        "$bin" --benchmark_format=json --benchmark_min_time="$SECONDS_EACH" >"$OUT/$side-$r.json"
      done
    done' >&2
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$before" "$load_start" "$load_end" "$work" <<'PY'
import glob, json, os, sys
before_rev, load_start, load_end, work = sys.argv[1:5]
def results(side):
    out = {}
    for path in sorted(glob.glob(os.path.join(work, f"{side}-*.json"))):
        for b in json.load(open(path))["benchmarks"]:
            if b.get("error_occurred"):
                raise SystemExit(f"bench-sliding-window: {side} {b['name']}: {b.get('error_message')}")
            store, limit = b["name"].split("/")[:2]
            key = (store, int(limit.split(":")[1]))
            best = out.get(key)
            if best is None or b["items_per_second"] > best[0]:
                out[key] = (b["items_per_second"], b["work_per_denial"], b.get("label", ""))
    return out
old, new = results("before"), results("after")
stores = ["redis", "postgresql", "sqlite"]
limits = sorted({limit for _, limit in new})
print(f"denied requests on a full window; before = {before_rev}, after = this tree; "
      "denials/s best of the rounds; work per denial counted")
print(f"{'store':11} {'limit':>7} {'before/s':>10} {'after/s':>10} {'after/before':>12}"
      f"   work per denial, before -> after")
for store in stores:
    for limit in limits:
        if (store, limit) not in new or (store, limit) not in old:
            continue
        o, n = old[(store, limit)], new[(store, limit)]
        print(f"{store:11} {limit:>7} {o[0]:10.0f} {n[0]:10.0f} {n[0] / o[0]:11.2f}x"
              f"   {o[1]:.0f} -> {n[1]:.0f} {n[2]}")
print("flat in the limit: denials/s at the largest limit / at the smallest")
for store in stores:
    lo, hi = (store, limits[0]), (store, limits[-1])
    if lo in old and hi in old and lo in new and hi in new:
        print(f"  {store:11} before {old[hi][0] / old[lo][0]:.4f}   after {new[hi][0] / new[lo][0]:.2f}")
print(f"load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end, "
      f"on {os.cpu_count()} cores")
PY
