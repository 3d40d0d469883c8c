#!/usr/bin/env bash
# Side-by-side benchmark: smart_ratelimit's bench_core (Google Benchmark, Release)
# against Go's golang.org/x/time/rate and Guava's RateLimiter, built offline and run
# in the same session. Prints one table: case, threads, ns per decision for each,
# our time divided by the faster peer's, the goal and whether it is met.
# Each program runs SMART_RATELIMIT_BENCH_ROUNDS times (default 3), interleaved, and
# the best round counts, which damps noise from other work on the machine.
# Usage: scripts/bench-peers.sh [--rounds N] [--seconds S] [--json FILE]
# SMART_RATELIMIT_BENCH_CORE=<binary> uses an already built bench_core.
set -euo pipefail
bench_name="bench-peers"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

rounds=${SMART_RATELIMIT_BENCH_ROUNDS:-3}
seconds=1
json_out=""
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    *) bench_usage_error "unknown option $1 (use --rounds N, --seconds S, --json FILE)" ;;
  esac
done
bench_require_count --rounds "$rounds"
bench_require_number --seconds "$seconds"

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

# The bench_core cases that match the peers' two cases: the clock is read inside
# the decision (as Allow()/tryAcquire() do), one hot key and a 100k-key working set;
# with the precise steady clock (the default, and what the goal is about) and the
# coarse one. All three run a token bucket of 1,000,000/s with a burst of 1,000,000.
ours_filter='^core/(hot_key|keys_100k)/(steady_clock|coarse_clock)'

results=$peers/results.jsonl
: >"$results"
load_before=$(cut -d' ' -f1 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds" >&2
  "$bench_core" --benchmark_filter="$ours_filter" --benchmark_format=json \
    --benchmark_min_time="$seconds" >"$peers/ours-$r.json"
  python3 - "$peers/ours-$r.json" >>"$results" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type", "iteration") != "iteration":
        continue
    name = b.get("run_name", b["name"])
    threads = int(b.get("threads", 1))
    unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    case = "keys_100k" if "/keys_100k/" in name else "single_key"
    peer = "ours_coarse" if "/coarse_clock" in name else "ours"
    print(json.dumps({"peer": peer, "case": case, "threads": threads,
                      "ns_per_op": b["real_time"] * unit, "name": name,
                      "allowed_ratio": b.get("allowed_ratio")}))
PY
  "$peers/go-peer" -seconds "$seconds" -rate 1e6 -burst 1000000 >>"$results"
  java -cp "$peers/java:$guava_jar" GuavaPeer --seconds "$seconds" --warmup 1 --rate 1e6 >>"$results"
done

[[ -n $json_out ]] && cp "$results" "$json_out"
python3 - "$results" "$load_before" "$(cut -d' ' -f1 /proc/loadavg)" "$(nproc)" <<'PY'
import json, sys
best = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    k = (r["case"], r["threads"], r["peer"])
    best[k] = min(best.get(k, float("inf")), r["ns_per_op"])
goals = {"single_key": 0.5, "keys_100k": 0.2}
fmt = lambda v: f"{v:9.1f}" if v is not None else f"{'n/a':>9}"
print()
hdr = f"{'case':<12} {'threads':>7} {'clock':<7} {'ours ns':>9} {'Go ns':>9} {'Guava ns':>9} {'ours/best':>10} {'goal':>6}  met"
print(hdr)
print("-" * len(hdr))
missing = False
for case in ("single_key", "keys_100k"):
    for threads in (1, 2):
        for ours_peer, clock in (("ours", "steady"), ("ours_coarse", "coarse")):
            ours = best.get((case, threads, ours_peer))
            go = best.get((case, threads, "go"))
            guava = best.get((case, threads, "guava"))
            peers = [v for v in (go, guava) if v is not None]
            if ours is None or not peers:
                missing = missing or clock == "steady"
                print(f"{case:<12} {threads:>7} {clock:<7} {fmt(ours)} {fmt(go)} {fmt(guava)} {'n/a':>10} {goals[case]:>6}  n/a")
                continue
            ratio = ours / min(peers)
            met = ("yes" if ratio <= goals[case] else "no") if clock == "steady" else "(info)"
            print(f"{case:<12} {threads:>7} {clock:<7} {fmt(ours)} {fmt(go)} {fmt(guava)} {ratio:10.3f} {goals[case]:>6}  {met}")
print()
print("ns per decision = wall time / total calls across threads (Google Benchmark real_time),")
print("best of the rounds. Every limiter is a token bucket of 1,000,000/s, burst 1,000,000, so")
print("the hot key is mostly denied and the 100k keys are always admitted, for all three.")
print("Peers get a prebuilt read-only map (no insertion, no eviction, no lock on the map);")
print("ours runs the full limiter: key formatting, seeded sharded bounded storage, decision.")
print("The goal is judged on the steady clock (the default); coarse-clock rows are for information.")
load = max(float(sys.argv[2]), float(sys.argv[3]))
print(f"Load average {sys.argv[2]} before, {sys.argv[3]} after, on {sys.argv[4]} cores.")
if load > float(sys.argv[4]):
    print("WARNING: the machine was busy with other work; absolute times are inflated "
          "(the ratios, measured in the same rounds, less so).")
sys.exit(1 if missing else 0)
PY
