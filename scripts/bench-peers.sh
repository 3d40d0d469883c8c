#!/usr/bin/env bash
# Side-by-side benchmark: smart_ratelimit's bench_core (Google Benchmark, Release)
# against Go's golang.org/x/time/rate and Guava's RateLimiter, built offline and run
# in the same session. Prints one table (case, threads, ns per decision and allowed
# share for ours with each clock, the floor and each peer), then every goal of issue 17
# with its ratio from this one run, the floor's ratio beside it, and whether it is met.
# --json FILE keeps one line per measurement: peer (ours, ours_coarse, ours_tsc,
# ours_passed, ours_check, ours_tb, floor, floor_coarse, floor_tsc, unshared, go, go_passed,
# guava),
# case (single_key, single_key_allow, keys_100k, memory_1m), threads, ns_per_op,
# allowed_share, round, and for 2 threads round_trip_ns ([before, after]).
# Each program runs SMART_RATELIMIT_BENCH_ROUNDS times (default 3), interleaved, and
# the best round counts, which damps noise from other work on the machine; beside
# each goal's ratio of the best times, the median of the ratios taken within each
# round (ours and the peers measured minutes apart at most) shows how steady it was.
# Every 2-thread row (ours, the floor, Go, Guava) records where its two cores were: a
# cache line's round trip between them just before and just after the row, near or
# far (the host moves a VM's vCPUs), and the 2-thread goals are also shown by placement.
# Usage: scripts/bench-peers.sh [--rounds N] [--seconds S] [--json FILE]
#        scripts/bench-peers.sh --report FILE   (the report again, from a --json FILE)
# SMART_RATELIMIT_BENCH_CORE=<binary> uses an already built bench_core. The report is
# scripts/lib/peers_report.py.
set -euo pipefail
bench_name="bench-peers"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

rounds=${SMART_RATELIMIT_BENCH_ROUNDS:-3}
seconds=1
json_out=""
saved=""
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    --report) saved=$2; shift 2 ;;
    *) bench_usage_error "unknown option $1 (use --rounds N, --seconds S, --json FILE, --report FILE)" ;;
  esac
done
bench_require_count --rounds "$rounds"
bench_require_number --seconds "$seconds"
if [[ -n $saved ]]; then
  [[ -z $json_out ]] || bench_usage_error "--report reads a saved run and --json keeps a new one: use one"
  [[ -f $saved ]] || bench_usage_error "--report: no file $saved"
  exec python3 scripts/lib/peers_report.py "$saved"
fi

scripts/install-deps.sh --with-bench

bench_core=${SMART_RATELIMIT_BENCH_CORE:-}
if [[ -z $bench_core ]]; then
  bench_build bench_core
  bench_core=$build/benchmarks/bench_core
fi
[[ -x $bench_core ]] || { echo "bench-peers: $bench_core is not an executable" >&2; exit 1; }

echo "== building the Go peer (offline)" >&2
peers=$build/peers
mkdir -p "$peers/gopath" "$peers/gocache" "$peers/java"
(cd benchmarks/peers/go &&
  GOPATH=$peers/gopath GOCACHE=$peers/gocache GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local \
    go build -o "$peers/go-peer" .)

echo "== building the Guava peer" >&2
guava_jar=/usr/share/java/guava.jar
[[ -f $guava_jar ]] || { echo "bench-peers: $guava_jar not found (apt-get install libguava-java)" >&2; exit 1; }
javac -d "$peers/java" -cp "$guava_jar" benchmarks/peers/java/GuavaPeer.java

# The bench_core cases that match the peers' cases, all a token bucket of 1,000,000/s
# with a burst of 1,000,000 (single_key: mostly denied; keys_100k: always admitted) or
# of 10^9/s (single_key_allow: every decision admits): the clock read inside the
# decision, as Allow()/tryAcquire() do, with the precise steady clock (the default, and
# what the goals are about), the coarse one and the TSC one, and with the time passed
# in (no clock read: what is left is lookup and coherence). Plus the floor (a clock
# read and one CAS on a preallocated slot; among 100k keys, the key read first, each
# key's slot in its own line, and each decision waiting for the one before), the
# floor's clock read alone on each thread with nothing shared ("unshared": how the
# machine scales work from one thread to two) and the heap bytes per key at 1M keys.
# "ours" is limiter.allow (yes or no, as the peers' calls answer), with each clock and
# with the time passed in; "check" is limiter.check (a verdict: every rule's count,
# remaining, waits and key) and "tb" check on token_bucket's state, precise clock.
ours_filter='^core/(allow/(hot_key|hot_key_allow|keys_100k)/(steady_clock|coarse_clock|tsc_clock|now_passed)|(token_bucket/)?(hot_key|hot_key_allow|keys_100k)/steady_clock|floor(_100k)?/|unshared/|memory/)'

# A peer's output lines, with the admitted share and the round added.
peer_lines='
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    r["allowed_share"] = r["allowed"] / r["ops"] if r.get("ops") else None
    r["round"] = int(sys.argv[1])
    print(json.dumps(r))'

results=$peers/results.jsonl
: >"$results"
load_before=$(cut -d' ' -f1 /proc/loadavg)
# The machine's CPU time (/proc/stat) and this script's children's, before and after:
# what the others used during the run, and what the hypervisor took (steal).
cpu_before=$(head -1 /proc/stat)
ours_before=$(cut -d')' -f2 "/proc/$$/stat")
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds" >&2
  "$bench_core" --benchmark_filter="$ours_filter" --benchmark_format=json \
    --benchmark_min_time="$seconds" >"$peers/ours-$r.json"
  python3 - "$peers/ours-$r.json" "$r" >>"$results" <<'PY'
import json, sys
cases = {"hot_key": "single_key", "hot_key_allow": "single_key_allow", "keys_100k": "keys_100k",
         "floor": "single_key", "floor_100k": "keys_100k", "unshared": "single_key"}
clocks = {"steady_clock": "", "coarse_clock": "_coarse", "tsc_clock": "_tsc",
          "now_passed": "_passed"}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type", "iteration") != "iteration":
        continue
    name = b.get("run_name", b["name"])
    parts = name.split("/")  # core/<set>/<clock>[/threads:N...]
    threads = int(b.get("threads", 1))
    if parts[1] == "memory":
        print(json.dumps({"peer": "ours", "case": "memory_1m", "threads": threads,
                          "ns_per_op": None, "bytes_per_key": b.get("bytes_per_key"),
                          "key_bytes": b.get("key_bytes"), "name": name,
                          "round": int(sys.argv[2])}))
        continue
    unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    if parts[1] == "token_bucket":  # core/token_bucket/<set>/<clock>: the same limiter on
        parts = parts[1:]           # token_bucket's three words instead of gcra's two
        peer = "ours_tb" + clocks[parts[2]]
    elif parts[1] == "allow":       # core/allow/<set>/<clock>: limiter.allow, the peers' call
        parts = parts[1:]
        peer = "ours" + clocks[parts[2]]
    elif parts[1] in ("hot_key", "hot_key_allow", "keys_100k"):  # limiter.check: a verdict
        peer = "ours_check" + clocks[parts[2]]
    elif parts[1] == "unshared":    # core/unshared/<clock>: the clock read alone
        peer = "unshared"
    else:                           # core/floor/<clock>, core/floor_100k/<clock>
        peer = "floor" + clocks[parts[2]]
    print(json.dumps({"peer": peer, "case": cases[parts[1]], "threads": threads,
                      "ns_per_op": b["real_time"] * unit, "name": name,
                      "allowed_share": b.get("allowed_ratio"), "round": int(sys.argv[2]),
                      "round_trip_ns": [b.get("round_trip_before_ns"),
                                        b.get("round_trip_after_ns")]}))
PY
  "$peers/go-peer" -seconds "$seconds" -rate 1e6 -burst 1000000 |
    python3 -c "$peer_lines" "$r" >>"$results"
  java -cp "$peers/java:$guava_jar" GuavaPeer --seconds "$seconds" --warmup 1 --rate 1e6 |
    python3 -c "$peer_lines" "$r" >>"$results"
done

[[ -n $json_out ]] && cp "$results" "$json_out"
python3 scripts/lib/peers_report.py "$results" "$load_before" "$(cut -d' ' -f1 /proc/loadavg)" \
  "$(nproc)" "$cpu_before" "$(head -1 /proc/stat)" "$ours_before" "$(cut -d')' -f2 "/proc/$$/stat")"
