# scripts/lib/bench.sh
# What the bench-*.sh scripts share, sourced (not run) once `bench_name` holds the script's
# name: moves to the repository root and sets `root`, `build` (SMART_RATELIMIT_BENCH_BUILD_DIR,
# default build-bench) and `jobs` (SMART_RATELIMIT_JOBS, default 2); adds option checks
# that exit 2 with "<bench_name>: ..." and the quiet Release build of benchmark targets.
# Usage: bench_name="bench-x"; source "$(dirname "$0")/lib/bench.sh"
# shellcheck shell=bash
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${bench_name:?set bench_name before sourcing scripts/lib/bench.sh}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit
root=$PWD
build=${SMART_RATELIMIT_BENCH_BUILD_DIR:-$root/build-bench}
jobs=${SMART_RATELIMIT_JOBS:-2}

# bench_usage_error <message>: reports a bad command line and exits 2.
bench_usage_error() {
  echo "$bench_name: $1" >&2
  exit 2
}

# bench_require_count <option> <value>: the value must be a positive integer.
bench_require_count() {
  [[ $2 =~ ^[1-9][0-9]*$ ]] || bench_usage_error "$1 must be a positive integer, got '$2'"
}

# bench_require_number <option> <value>: the value must be a non-negative decimal number.
bench_require_number() {
  [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]] || bench_usage_error "$1 must be a number, got '$2'"
}

# bench_build <target>...: builds the benchmark targets in $build (Release, benchmarks
# only), printing one "== building" line to stderr and nothing else unless it fails.
bench_build() {
  local names
  printf -v names '%s, ' "$@"
  echo "== building ${names%, } (Release)" >&2
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_EXAMPLES=OFF \
    -DSMART_RATELIMIT_BUILD_TOOLS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=ON >/dev/null
  cmake --build "$build" -j "$jobs" --target "$@" >/dev/null
}
