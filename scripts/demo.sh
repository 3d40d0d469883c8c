#!/usr/bin/env bash
# The README's demo command: installs what the build needs, builds the examples
# (Release) and runs examples/limiter_demo, which shows the four algorithms side by
# side on the same traffic and a two-rule limiter deciding per client.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${SMART_RATELIMIT_DEMO_BUILD_DIR:-build-demo}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=OFF \
  -DSMART_RATELIMIT_BUILD_TOOLS=OFF -DSMART_RATELIMIT_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j "${SMART_RATELIMIT_JOBS:-2}" --target limiter_demo
echo
"$build/examples/limiter_demo"
