#!/usr/bin/env bash
# The PostgreSQL event log partitioned by day, at scale, in one run: a generated
# 30-day log of --rows events (default 50M, ~15 GB on disk with its indexes and
# rollups; generating it takes most of the run), then
#  - the dashboard's queries for 30 days through the rollups (goal: < 1 s),
#  - one offender's 30-day drill-down (goal: < 50 ms), for the median offender and
#    for the top one (the key with the most events),
#  - retention: the batch delete of the oldest day (1000 rows per statement, the
#    rollups corrected by their triggers, as before partitioning) against dropping
#    the 29 later days' partitions; prints the ratio (goal: >= 100x) and how long
#    a writer beside the drop (one row per batch, every 5 ms) waited at most.
# Usage: scripts/bench-partitions.sh [--rows N]
set -euo pipefail
bench_name="bench-partitions"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

rows=50000000
while (($#)); do
  case $1 in
    --rows) rows=$2; shift 2 ;;
    *) bench_usage_error "unknown option $1 (use --rows N)" ;;
  esac
done
bench_require_count --rows "$rows"

scripts/install-deps.sh --with-bench
bench_build bench_analytics_sql

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== generating $rows events over 30 days in PostgreSQL, partitioned by day" >&2
scripts/test-servers.sh "$build/benchmarks/bench_analytics_sql" --rows="$rows" --no-sqlite \
  --retention --benchmark_filter='^sql/postgresql/rollup/(dashboard_30d|offender_detail_30d|offender_detail_median_30d)/' \
  --benchmark_out="$out/sql.json" --benchmark_out_format=json >"$out/retention.txt"

python3 - "$out" "$rows" <<'PY'
import json, os, sys
out, rows = sys.argv[1], int(sys.argv[2])
sql = {b["name"]: b for b in json.load(open(os.path.join(out, "sql.json")))["benchmarks"]}
def ms(fn):
    for k, b in sql.items():
        if k.startswith(f"sql/postgresql/rollup/{fn}/"):
            return b["real_time"]
    sys.exit(f"bench-partitions: no result for {fn}")
dash, detail, median = ms("dashboard_30d"), ms("offender_detail_30d"), ms("offender_detail_median_30d")
print(f"PostgreSQL, {rows:,} events over 30 days, partitioned by day (wall time)")
print(f"  dashboard (today + 30-day summary, top 20 offenders, top 20 rules): {dash:.1f} ms "
      f"(goal < 1000 ms) {'ok' if dash < 1000 else 'MISSED'}")
print(f"  one offender's 30-day drill-down, the median offender: {median:.2f} ms (goal < 50 ms) "
      f"{'ok' if median < 50 else 'MISSED'}")
print(f"  the same for the top offender (the most events of any key): {detail:.2f} ms "
      f"(goal < 50 ms) {'ok' if detail < 50 else 'MISSED'}")
for line in open(os.path.join(out, "retention.txt")):
    if line.startswith("retention:"):
        print("  " + line.rstrip())
PY
