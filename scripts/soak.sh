#!/usr/bin/env bash
# The soak under faults: the demo server on PostgreSQL (event log) and Redis (state)
# under wrk load from 10,000 client addresses, while PostgreSQL and Redis are killed
# and frozen in turn, SMTP refuses and the webhook hangs (scripts/soak.py says what
# it checks). Prints each check and a JSON summary; exits 0 only when all hold.
# Usage: scripts/soak.sh [--minutes N] [--keep]   (default 10 minutes; at least 2)
# Environment: SMART_RATELIMIT_BENCH_BUILD_DIR (build-demo, the demo's Release build
# shared with demo.sh and bench-http.sh), SMART_RATELIMIT_JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/common.sh
source scripts/lib/common.sh

scripts/install-deps.sh --with-soak
build=${SMART_RATELIMIT_BENCH_BUILD_DIR:-build-demo}
build_demo "$build" "${SMART_RATELIMIT_JOBS:-2}"
exec python3 scripts/soak.py --server "$build/examples/demo_server" \
  --cli "$build/tools/smart-ratelimit" "$@"
