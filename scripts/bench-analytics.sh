#!/usr/bin/env bash
# The analytics speed goals, measured in one run and printed as ratios:
#  - in memory (bench_analytics, 1M and 10M events): the traffic summary's bytes/s
#    next to a plain sequential read of the same vector (goal: within 2x), and the
#    events/s of every function (goal for the key-grouping ones: >= 10M events/s);
#  - in SQL (bench_analytics_sql, a generated 30-day table of --rows events on SQLite
#    and on PostgreSQL started by scripts/test-servers.sh): the dashboard's queries
#    through the rollups (goal: < 1 s) and each function against the same query on
#    the raw table (goal: >= 30x), plus what the rollup triggers cost at ingest.
# Usage: scripts/bench-analytics.sh [--rows N] [--memory-only | --sql-only]
set -euo pipefail
bench_name="bench-analytics"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

rows=10000000
run_memory=1
run_sql=1
while (($#)); do
  case $1 in
    --rows) rows=$2; shift 2 ;;
    --memory-only) run_sql=0; shift ;;
    --sql-only) run_memory=0; shift ;;
    *) bench_usage_error "unknown option $1 (use --rows N, --memory-only, --sql-only)" ;;
  esac
done
bench_require_count --rows "$rows"

scripts/install-deps.sh --with-bench
bench_build bench_analytics bench_analytics_sql

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ((run_memory)); then
  echo "== in memory: 1M and 10M events (~2.4 GB for 10M)" >&2
  "$build/benchmarks/bench_analytics" --benchmark_min_time=0.5 \
    --benchmark_out="$out/memory.json" --benchmark_out_format=json >&2
fi
if ((run_sql)); then
  echo "== SQL: generating $rows rows in SQLite and PostgreSQL (minutes for 10M)" >&2
  scripts/test-servers.sh "$build/benchmarks/bench_analytics_sql" --rows="$rows" \
    --sqlite="$out/events.db" --benchmark_out="$out/sql.json" --benchmark_out_format=json >&2
fi

python3 - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]

def load(name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return None
    return {b["name"]: b for b in json.load(open(p))["benchmarks"]}

mem = load("memory.json")
if mem:
    print("In memory (CPU time; std::vector<event>, 30-day window, 100k keys, 30% blocked)")
    for n in ("1000000", "10000000"):
        seq = mem.get(f"BM_sequential_read/{n}")
        if not seq:
            continue
        print(f"  {int(n):>10,} events, {seq['bytes_per_second'] / 1e9:.1f} GB/s sequential read")
        for fn, goal in (("traffic_summary", "bw"), ("top_offenders", 10e6), ("rule_hit_counts", 10e6),
                         ("offenders_csv", 10e6), ("find_alertable_offenders", 10e6), ("offender_detail", None)):
            b = mem.get(f"BM_{fn}/{n}")
            if not b:
                continue
            eps = b["items_per_second"]
            line = f"    {fn:<26} {eps / 1e6:8.1f} M events/s"
            if goal == "bw":
                r = b["bytes_per_second"] / seq["bytes_per_second"]
                line += f"  {b['bytes_per_second'] / 1e9:6.1f} GB/s = {r:.2f} x sequential read (goal >= 0.50) {'ok' if r >= 0.5 else 'MISSED'}"
            elif goal:
                line += f"  (goal >= 10 M/s) {'ok' if eps >= goal else 'MISSED'}"
            print(line)

sql = load("sql.json")
if sql:
    rows = json.load(open(os.path.join(out, "sql.json")))["context"].get("rows", "?")
    print(f"SQL (wall time; {int(rows):,} events over 30 days)")
    for be in ("sqlite", "postgresql"):
        def t(mode, fn):
            for k, b in sql.items():
                if k.startswith(f"sql/{be}/{mode}/{fn}/"):
                    return b["real_time"]  # ms
            return None
        dash = t("rollup", "dashboard_30d")
        if dash is None:
            continue
        print(f"  {be}: dashboard (today + 30-day summary, top 20 offenders, top 20 rules) "
              f"{dash:.1f} ms (goal < 1000 ms) {'ok' if dash < 1000 else 'MISSED'}")
        for fn in ("dashboard_30d", "traffic_summary_30d", "top_offenders_30d", "rule_hit_counts_30d",
                   "offenders_csv_30d", "offender_detail_30d", "alertable_offenders_1d"):
            r, n = t("rollup", fn), t("naive", fn)
            if r is None or n is None:
                continue
            ratio = n / r if r > 0 else float("inf")
            print(f"    {fn:<24} {r:9.2f} ms  raw table {n:10.1f} ms  = {ratio:7.1f} x faster (goal >= 30) "
                  f"{'ok' if ratio >= 30 else 'below'}")
        ing = {m: sql.get(f"ingest/{be}/{m}/min_time:1.000/real_time") for m in ("plain", "with_rollups")}
        if all(ing.values()):
            p, w = ing["plain"]["items_per_second"], ing["with_rollups"]["items_per_second"]
            print(f"    ingest (1000-event batches): {p / 1e3:.1f} k/s plain, {w / 1e3:.1f} k/s with rollups (triggers; batch hooks for the SQLite writer) "
                  f"= {w / p:.2f} x")
EOF
