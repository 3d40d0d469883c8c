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
python3 - "$results" "$load_before" "$(cut -d' ' -f1 /proc/loadavg)" "$(nproc)" \
  "$cpu_before" "$(head -1 /proc/stat)" "$ours_before" "$(cut -d')' -f2 "/proc/$$/stat")" <<'PY'
import json, statistics, sys
best, memory, by_round = {}, None, {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    if r["case"] == "memory_1m":
        memory = r
        continue
    k = (r["case"], r["threads"], r["peer"])
    if k not in best or r["ns_per_op"] < best[k]["ns_per_op"]:
        best[k] = r
    by_round.setdefault(r.get("round", 1), {})[k] = r

def ns(case, threads, peer, table=None):
    r = (best if table is None else table).get((case, threads, peer))
    return r["ns_per_op"] if r else None

def share(case, threads, peer):
    r = best.get((case, threads, peer))
    return r.get("allowed_share") if r else None

fmt = lambda v: f"{v:8.1f}" if v is not None else f"{'-':>8}"
pct = lambda v: f"{100 * v:4.0f}%" if v is not None else f"{'-':>5}"
cols = [("ours", "ours"), ("coarse", "ours_coarse"), ("tsc", "ours_tsc"),
        ("passed", "ours_passed"), ("check", "ours_check"), ("tb", "ours_tb"), ("floor", "floor"), ("floor/c", "floor_coarse"),
        ("floor/t", "floor_tsc"), ("Go", "go"),
        ("Go pass", "go_passed"), ("Guava", "guava")]
print()
print("ns per decision (best round), and below each the share of decisions admitted")
hdr = f"{'case':<17} {'thr':>3} " + " ".join(f"{c:>8}" for c, _ in cols)
print(hdr)
print("-" * len(hdr))
for case in ("single_key", "single_key_allow", "keys_100k"):
    for threads in (1, 2):
        print(f"{case:<17} {threads:>3} " + " ".join(fmt(ns(case, threads, p)) for _, p in cols))
        print(f"{'':<17} {'':>3} " + " ".join(f"{pct(share(case, threads, p)):>8}" for _, p in cols))

def best_peer(case, threads, table=None):
    v = [x for x in (ns(case, threads, "go", table), ns(case, threads, "guava", table))
         if x is not None]
    return min(v) if v else None

def ratio(a, b):
    return a / b if a is not None and b else None

def vs_peers(case, threads, peer, table=None):
    return ratio(ns(case, threads, peer, table), best_peer(case, threads, table))

def two_over_one(case, peer, table=None):
    return ratio(ns(case, 2, peer, table), ns(case, 1, peer, table))

def per_round(f):
    """The median over the rounds of a ratio taken within each round."""
    v = [x for x in (f(t) for t in by_round.values()) if x is not None]
    return statistics.median(v) if v else None

# Each goal: the ratio of the best times and the median of the ratios within each
# round, for ours and, beside them, for the floor: where the floor itself misses a
# goal, no limiter can meet it on this machine.
def goal(text, case, threads, peer, floor_peer, g):
    of = lambda p: (vs_peers(case, threads, p),
                    per_round(lambda t: vs_peers(case, threads, p, t)))
    return (text, *of(peer), *of(floor_peer), g)

goals = [
    goal("one key, 1 thread: ours / best peer", "single_key", 1, "ours", "floor", 1.0),
    goal("one key, 1 thread, TSC clock: ours / best peer", "single_key", 1, "ours_tsc",
         "floor_tsc", 0.9),
    goal("one key, 1 thread, coarse clock: ours / best peer", "single_key", 1, "ours_coarse",
         "floor_coarse", 0.6),
    goal("one key, 2 threads, mostly denied: ours / best peer", "single_key", 2, "ours",
         "floor", 0.5),
    ("one key: ours 2 threads / ours 1 thread", two_over_one("single_key", "ours"),
     per_round(lambda t: two_over_one("single_key", "ours", t)),
     two_over_one("single_key", "floor"),
     per_round(lambda t: two_over_one("single_key", "floor", t)), 0.6),
    goal("100k keys, 1 thread: ours / best peer", "keys_100k", 1, "ours", "floor", 0.6),
    goal("100k keys, 2 threads: ours / best peer", "keys_100k", 2, "ours", "floor", 0.75),
]
if memory and memory.get("bytes_per_key") is not None:
    budget = 64 + memory["key_bytes"]
    goals.append((f"memory at 1M keys: {memory['bytes_per_key']:.1f} B/key vs 64 + {memory['key_bytes']:.1f} key bytes",
                  memory["bytes_per_key"] / budget, None, None, None, 1.0))
else:
    goals.append(("memory at 1M keys", None, None, None, None, 1.0))

def verdict(r, med, f, f_med, g):
    """Met when both the ratio and the median meet the goal: a ratio of lucky best
    rounds whose rounds, one by one, mostly miss is not a goal met. A count ours
    misses where the floor misses it too is out of reach on this machine."""
    misses = lambda x: x is not None and x > g
    if not misses(r) and not misses(med):
        return "yes"
    if (not misses(r) or misses(f)) and (not misses(med) or misses(f_med)):
        return "floor misses"
    return "best only" if not misses(r) else "no"

print()
print(f"{'goal (steady clock unless named)':<68} {'ratio':>7} {'median':>7} "
      f"{'floor':>7} {'median':>7} {'goal':>6}  met")
missing = False
num = lambda v: f"{v:7.3f}" if v is not None else f"{'-':>7}"
verdicts = []
for text, r, med, f, f_med, g in goals:
    if r is None:
        missing = True
        print(f"{text:<68} {'n/a':>7} {num(med)} {num(f)} {num(f_med)} {g:>6}  n/a")
    else:
        verdicts.append((text, verdict(r, med, f, f_med, g)))
        print(f"{text:<68} {r:7.3f} {num(med)} {num(f)} {num(f_med)} {g:>6}  {verdicts[-1][1]}")
unmet = [text for text, v in verdicts if v in ("no", "best only")]
out_of_reach = [text for text, v in verdicts if v == "floor misses"]
print(f"{len(verdicts) - len(unmet) - len(out_of_reach)} of {len(goals)} goals met"
      + (f"; out of reach here, the floor missing too: {'; '.join(out_of_reach)}"
         if out_of_reach else "")
      + (f"; missed: {'; '.join(unmet)}" if unmet else "")
      + (f"; {len(goals) - len(verdicts)} not measured" if len(verdicts) < len(goals) else ""))
print(f"{'beside the 2 threads / 1 thread goal, work that shares nothing (a clock':<68} "
      f"{num(two_over_one('single_key', 'unshared'))} "
      f"{num(per_round(lambda t: two_over_one('single_key', 'unshared', t)))}")
print("read per call on each thread): how this machine scales from one thread to two")
# Where each 2-thread row ran: ours, the floor and both peers measure how long a cache
# line takes to go from one of the row's threads to the other and back, just before
# the row and just after it. The host places the VM's two vCPUs near each other or far
# apart and moves them within seconds; on far cores a 2-thread row is slower for
# everyone (on one key every write moves the key's line between the cores, the
# floor's too), so the 2-thread goals are also shown by placement.
near_limit = 250.0  # ns: near placements measured 83-150, far ones 390-590

def placement(case, peer, t):
    r = t.get((case, 2, peer))
    trips = r.get("round_trip_ns") if r else None
    if not trips or None in trips:
        return None
    return "near" if max(trips) < near_limit else "far" if min(trips) >= near_limit else "moved"

def best_peer_in(case, t):
    v = [(ns(case, 2, p, t), p) for p in ("go", "guava") if ns(case, 2, p, t) is not None]
    return min(v) if v else (None, None)

print()
print("2-thread rows round by round: ns per decision and where the row's two cores were")
print(f"(near: a cache line's round trip between them under {near_limit:.0f} ns just before and")
print("just after the row; far: over it both times; moved: one of each)")
by_place = {}
for case, title in (("single_key", "one key, mostly denied"), ("keys_100k", "100k keys")):
    print(title)
    print(f"{'round':>7} {'ours 1t':>8} {'ours 2t':>8} {'':<5} {'2t/1t':>7}   {'floor 1t':>8} "
          f"{'floor 2t':>8} {'':<5} {'2t/1t':>7}   {'Go 2t':>8} {'':<5} {'Guava 2t':>8} {'':<5} "
          f"{'ours/best':>9}")
    for rnd in sorted(by_round):
        t = by_round[rnd]
        cells = []
        for peer in ("ours", "floor"):
            one, two, where = ns(case, 1, peer, t), ns(case, 2, peer, t), placement(case, peer, t)
            r = ratio(two, one)
            if r is not None and where is not None:
                by_place.setdefault((case, "2t/1t", peer, where), []).append(r)
            cells.append(f"{fmt(one)} {fmt(two)} {where or '-':<5} {num(r)}")
        peers = " ".join(f"{fmt(ns(case, 2, p, t))} {placement(case, p, t) or '-':<5}"
                         for p in ("go", "guava"))
        peer_ns, peer = best_peer_in(case, t)
        r = ratio(ns(case, 2, "ours", t), peer_ns)
        ours_at, peer_at = placement(case, "ours", t), placement(case, peer, t) if peer else None
        if r is not None and ours_at is not None and ours_at == peer_at:
            by_place.setdefault((case, "vs peer", "ours", ours_at), []).append(r)
        print(f"{rnd:>7} " + "   ".join(cells) + f"   {peers} {num(r):>9}")

def medians(key_of, peers):
    def one(peer, where):
        v = by_place.get(key_of(peer, where), [])
        got = f"{statistics.median(v):.3f}" if v else "-"
        return f"{peer + ' ' if len(peers) > 1 else ''}{got} ({len(v)} of {len(by_round)})"
    return "; ".join(f"{where}: " + ", ".join(one(p, where) for p in peers)
                     for where in ("near", "far"))

for t in by_round.values():
    r = two_over_one("single_key", "unshared", t)
    where = placement("single_key", "unshared", t)
    if r is not None and where is not None:
        by_place.setdefault(("single_key", "2t/1t", "unshared", where), []).append(r)

print()
print("Medians of the rounds by placement:")
print("one key, 2 threads / 1 thread (goal 0.6): "
      + medians(lambda p, w: ("single_key", "2t/1t", p, w), ("ours", "floor", "unshared")))
for case, title, g in (("single_key", "one key", 0.5), ("keys_100k", "100k keys", 0.75)):
    print(f"{title}, 2 threads, ours / best peer, both on the same placement (goal {g}): "
          + medians(lambda p, w: (case, "vs peer", p, w), ("ours",)))
print()
print("The same ratios for limiter.check (a verdict), beside the goals (no goal of their own):")
for text, case, threads in (("one key, 1 thread", "single_key", 1),
                            ("one key, 2 threads", "single_key", 2),
                            ("100k keys, 1 thread", "keys_100k", 1),
                            ("100k keys, 2 threads", "keys_100k", 2)):
    r = vs_peers(case, threads, "ours_check")
    med = per_round(lambda t: vs_peers(case, threads, "ours_check", t))
    print(f"{'check, ' + text + ': ours / best peer':<68} {num(r)} {num(med)}")
print()
print("ns per decision = wall time / total calls across threads (Google Benchmark real_time),")
print("best of the rounds. single_key: 1,000,000/s with a burst of 1,000,000, mostly denied")
print("once the burst is spent; single_key_allow: 10^9/s, every call admitted; keys_100k:")
print("1,000,000/s per key, always admitted. 'passed' rows take the time as an argument")
print("(no clock read); 'floor' is a clock read plus one CAS on a preallocated slot (for")
print("keys_100k, the key read first, one slot per key in its own line, and each decision")
print("waiting for the one before). Goals: 'ratio' compares the best rounds; 'median' is the")
print("median over the rounds of the same ratio taken within one round; 'floor' and its")
print("'median' are the same with the floor in place of ours. 'met': both the ratio and the")
print("median meet the goal ('best only': the ratio does, the median does not; 'floor")
print("misses': ours misses only where the floor, a clock read and a CAS, misses too).")
print("Peers get a prebuilt read-only map (no insertion, no eviction, no lock on the map);")
print("ours runs the full limiter: key formatting, keyed sharded bounded storage, decision,")
print("on concurrent_storage<gcra> (the token bucket kept as GCRA, two words a key), called")
print("as limiter.allow (yes or no, as Allow() and tryAcquire() answer). 'check' is")
print("limiter.check on the same limiter (a verdict: each rule's count, remaining, waits and")
print("key, for the HTTP headers); 'tb' is check on concurrent_storage<token_bucket> (three")
print("words); both with the steady clock.")
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal (ticks); this
# script's stat after the comm: field 14 and 15 of it are its waited-for children's
# user and system time (the benchmarks and peers).
cpu = [[int(x) for x in a.split()[1:9]] for a in (sys.argv[5], sys.argv[6])]
d = [b - a for a, b in zip(*cpu)]
busy, steal, total = d[0] + d[1] + d[2] + d[5] + d[6], d[7], sum(d)
children = [sum(int(x) for x in a.split()[13:15]) for a in (sys.argv[7], sys.argv[8])]
others = max(0, busy - (children[1] - children[0]))
share = lambda x: 100.0 * x / total if total else 0.0
print(f"Load average {sys.argv[2]} before, {sys.argv[3]} after (this run's own threads "
      f"included), on {sys.argv[4]} cores. During the run, other processes used "
      f"{share(others):.1f}% of the CPU time and the hypervisor took {share(steal):.1f}% (steal).")
# (The load average before says more about the last minutes than about this run.)
if share(others) > 5 or share(steal) > 5:
    print("WARNING: the machine was busy with other work; absolute times are inflated "
          "(the ratios, measured in the same rounds, less so). Rerun when it is quiet.")
sys.exit(1 if missing else 0)
PY
