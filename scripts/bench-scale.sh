#!/usr/bin/env bash
# Several nodes against one shared store, each next to the store's own ceiling in the
# same run (scripts/bench_scale.py says how each side is measured):
#  - decisions/s of three processes through one three-master Redis Cluster, against
#    three redis-benchmark processes running the same EVALSHA on the same keys
#    (goal >= 0.8);
#  - event ingest of three async_sink<event_store> writers into one PostgreSQL,
#    against one raw libpq COPY writer (goal >= 0.8).
# Servers are private, on free 127.0.0.1 ports, stopped by their PIDs.
# Usage: scripts/bench-scale.sh [--rounds N] [--seconds S]
set -euo pipefail
bench_name="bench-scale"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

rounds=3
seconds=2
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) bench_usage_error "unknown option $1 (use --rounds N, --seconds S)" ;;
  esac
done
bench_require_count --rounds "$rounds"
bench_require_number --seconds "$seconds"

scripts/install-deps.sh --with-bench
bench_build bench_redis bench_event_store
exec python3 scripts/bench_scale.py --bench-dir "$build/benchmarks" --rounds "$rounds" \
  --seconds "$seconds"
