#!/usr/bin/env bash
# Fuzzes every parser that meets outside bytes: builds the libFuzzer targets of fuzz/
# with Clang (ASan+UBSan) in build-fuzz and runs each for --seconds (default 60) from
# a copy of its seed corpus in fuzz/corpus/<target>. A crash, a sanitizer report or a
# broken property stops the run: the input is saved as build-fuzz/artifacts/<target>-*,
# and the script exits 1 naming it (add it to fuzz/corpus/<target> to keep it as a
# regression test: `ctest -L fuzz` replays every corpus in every build).
# --seed N makes libFuzzer's choices repeatable (the test command uses --seed 1, so a
# CI run does not fail on a new find by chance; run without it to explore).
# Usage: scripts/fuzz.sh [--seconds N] [--target NAME] [--seed N]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
only=""
seed=0
while (($#)); do
  case $1 in
    --seconds) seconds=${2:-}; shift 2 ;;
    --target) only=${2:-}; shift 2 ;;
    --seed) seed=${2:-}; shift 2 ;;
    *) echo "fuzz: unknown option $1 (use --seconds N, --target NAME, --seed N)" >&2; exit 2 ;;
  esac
done
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --seconds must be a positive integer, got '$seconds'" >&2; exit 2; }
[[ $seed =~ ^[0-9]+$ ]] || { echo "fuzz: --seed must be a non-negative integer, got '$seed'" >&2; exit 2; }

scripts/install-deps.sh
build=${SMART_RATELIMIT_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${SMART_RATELIMIT_JOBS:-2}
echo "== building the fuzz targets (Clang, libFuzzer, ASan+UBSan) in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
  -DSMART_RATELIMIT_BUILD_FUZZERS=ON -DSMART_RATELIMIT_BUILD_TESTS=OFF \
  -DSMART_RATELIMIT_BUILD_BENCHMARKS=OFF -DSMART_RATELIMIT_BUILD_EXAMPLES=OFF \
  -DSMART_RATELIMIT_BUILD_TOOLS=OFF -DSMART_RATELIMIT_INSTALL=OFF >/dev/null
cmake --build "$build" -j "$jobs"

targets=()
for dir in fuzz/corpus/*/; do
  t=$(basename "$dir")
  [[ -z $only || $t == "$only" ]] || continue
  [[ -x $build/fuzz/$t ]] || { echo "fuzz: $t has a corpus but was not built (its adapter missing?)" >&2; exit 1; }
  targets+=("$t")
done
((${#targets[@]})) || { echo "fuzz: no target named '$only'" >&2; exit 2; }

mkdir -p "$build/artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp fuzz/corpus/"$t"/* "$work/$t"/
  seeds=$(find "fuzz/corpus/$t" -type f | wc -l)
  echo "== $t: $seconds s from $seeds seeds"
  if "$build/fuzz/$t" "$work/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -seed="$seed" -artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 >"$work/$t.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
    corpus=$(find "$work/$t" -type f | wc -l)
    echo "   ok: ${runs:-?} inputs run, corpus grew from $seeds to $corpus, no crash or broken property"
  else
    echo "   FAILED: see below; the input is in $build/artifacts/"
    tail -40 "$work/$t.log"
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzz: ${#targets[@]} targets, $seconds s each, no failure"
