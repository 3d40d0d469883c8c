#!/usr/bin/env bash
# The README's test command: installs what the build needs, checks the layout with
# clang-format, builds everything with GCC, starts private PostgreSQL and Redis
# servers on loopback, and runs the suite (packaging tests and the fuzz corpora
# included); runs the std-only suites once more through Meson; fuzzes every parser
# briefly (scripts/fuzz.sh); then builds and runs the suite again at -O1 with Clang
# under ASan+UBSan (Clang 14 being the other supported compiler, the examples
# included: the demo server's own HTTP reading and writing run sanitized) and with GCC
# under TSan, both without benchmarks and packaging tests (build time, no coverage).
# Environment: SMART_RATELIMIT_TEST_SANITIZERS=0 skips the sanitizer passes,
# SMART_RATELIMIT_TEST_MESON=0 the Meson pass, SMART_RATELIMIT_TEST_FUZZ=0 the fuzzing
# (SMART_RATELIMIT_FUZZ_SECONDS per target, default 20), SMART_RATELIMIT_JOBS sets
# parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --with-browser
export SMART_RATELIMIT_REQUIRE_SERVERS=1
jobs=${SMART_RATELIMIT_JOBS:-2}
started=$SECONDS

elapsed() { echo "($((SECONDS - started)) s so far)"; }

build_and_test() {  # <build-dir> <cmake args...>
  local dir=$1; shift
  echo "== $dir: configure and build $(elapsed)"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== $dir: test $(elapsed)"
  scripts/test-servers.sh ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 900
}

echo "== clang-format $(elapsed)"
scripts/format.sh --check

# -g1 keeps line tables for stack traces at a fraction of full debug info's build time.
build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"

if [[ ${SMART_RATELIMIT_TEST_MESON:-1} != 0 ]]; then
  echo "== build-meson: configure, build and test with Meson $(elapsed)"
  if [[ -f build-meson/build.ninja ]]; then
    meson setup --reconfigure build-meson -Dtests=enabled >/dev/null
  else
    meson setup build-meson -Doptimization=1 -Ddebug=false -Dtests=enabled >/dev/null
  fi
  meson compile -C build-meson -j "$jobs"
  scripts/test-servers.sh meson test -C build-meson --print-errorlogs --num-processes "$jobs"
fi

if [[ ${SMART_RATELIMIT_TEST_FUZZ:-1} != 0 ]]; then
  # Every parser that meets outside bytes, under libFuzzer (ASan+UBSan), briefly.
  echo "== fuzz: ${SMART_RATELIMIT_FUZZ_SECONDS:-20} s per target $(elapsed)"
  scripts/fuzz.sh --seconds "${SMART_RATELIMIT_FUZZ_SECONDS:-20}" --seed 1
fi

if [[ ${SMART_RATELIMIT_TEST_SANITIZERS:-1} != 0 ]]; then
  san_opts=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1"
            -DSMART_RATELIMIT_BUILD_BENCHMARKS=OFF -DSMART_RATELIMIT_BUILD_PACKAGING_TESTS=OFF)
  # Clang, under ASan+UBSan, with the examples: the demo server parses and writes HTTP
  # itself.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    build_and_test build-asan "${san_opts[@]}" -DCMAKE_CXX_COMPILER=clang++ \
    -DSMART_RATELIMIT_BUILD_EXAMPLES=ON "-DSMART_RATELIMIT_SANITIZE=address,undefined"
  TSAN_OPTIONS=second_deadlock_stack=1 \
    build_and_test build-tsan "${san_opts[@]}" -DSMART_RATELIMIT_BUILD_EXAMPLES=OFF \
    "-DSMART_RATELIMIT_SANITIZE=thread"
fi
echo "== all tests passed $(elapsed)"
