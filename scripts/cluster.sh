#!/usr/bin/env bash
# Several servers working as one, on loopback: PostgreSQL (the event log), a
# three-master Redis Cluster (the limiter's state), three demo servers and nginx as the
# round-robin load balancer in front (scripts/cluster.py says what it checks).
# Usage: scripts/cluster.sh [--check] [--seconds N] [--keep]
#   --check   print one JSON line (nodes, admitted, limit, dashboards_equal,
#             alerts_sent, alerts_expected) and exit 0 only when every check holds
# Environment: SMART_RATELIMIT_BENCH_BUILD_DIR (build-demo, the demo's Release build
# shared with demo.sh and bench-http.sh), SMART_RATELIMIT_JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
source scripts/lib/common.sh

scripts/install-deps.sh --with-cluster >&2
build=${SMART_RATELIMIT_BENCH_BUILD_DIR:-build-demo}
build_demo "$build" "${SMART_RATELIMIT_JOBS:-2}" >&2
exec python3 scripts/cluster.py --server "$build/examples/demo_server" \
  --cli "$build/tools/smart-ratelimit" "$@"
