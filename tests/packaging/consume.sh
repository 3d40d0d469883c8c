#!/usr/bin/env bash
# Builds and runs the consumer project the way a user meets smart_ratelimit.
# Usage: consume.sh <step> <source-tree> <work-dir> [adapters, e.g. soci,beast,redis,smtp]
#   install       configure the tree alone (no tests), cmake --install to <work>/prefix
#   find_package  consumer with find_package(smart_ratelimit CONFIG REQUIRED) on that prefix
#   pkgconfig     consumer compiled by hand with `pkg-config --cflags --libs`
#   errors        find_package with a wrong version / unknown component fails clearly
#   version       the installed .pc, CMake version file and version.hpp state <source>/VERSION
#   subdirectory  consumer with add_subdirectory(<source-tree>)
#   meson         consumer Meson project with subprojects/smart_ratelimit -> <source-tree>
# CXX and CMAKE_GENERATOR are honoured. Exits non-zero with the failing step's log.
set -euo pipefail

step=$1 src=$(cd "$2" && pwd) work=$(realpath -m "$3") adapters=${4:-}
version=$(tr -d '[:space:]' <"$src/VERSION")
here=$(cd "$(dirname "$0")" && pwd)
cxx=${CXX:-c++}
gen=(-G "${CMAKE_GENERATOR:-Ninja}")
prefix=$work/prefix
log=$work/$step.log
mkdir -p "$work"
: >"$log"

run() {  # logs the command and its output; shows the log when it fails
  echo "+ $*" >>"$log"
  if ! "$@" >>"$log" 2>&1; then
    echo "consume.sh $step: command failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}
fresh() { rm -rf "$1" && mkdir -p "$1"; }
consumer_copy() { fresh "$1" && cp -r "$here/consumer/." "$1/"; }

check_output() {  # <binary>: runs it and checks that it reports success
  local out
  out=$("$1") || { echo "consume.sh $step: consumer exited with $?: $out" >&2; exit 1; }
  echo "$out"
  [[ $out == *"consumer: ok"* ]] || { echo "consume.sh $step: unexpected output" >&2; exit 1; }
  local a
  for a in ${adapters//,/ }; do
    [[ $out == *"adapter $a: ok"* ]] || { echo "consume.sh $step: the $a adapter check did not run" >&2; exit 1; }
  done
}

case $step in
  install)
    fresh "$work/lib"
    rm -rf "$prefix"
    run cmake -S "$src" -B "$work/lib" "${gen[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
      -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=OFF \
      -DSMART_RATELIMIT_BUILD_EXAMPLES=OFF -DSMART_RATELIMIT_BUILD_TOOLS=OFF
    run cmake --install "$work/lib" --prefix "$prefix"
    for f in include/smart_ratelimit/smart_ratelimit.hpp \
             share/cmake/smart_ratelimit/smart_ratelimitConfig.cmake \
             share/cmake/smart_ratelimit/smart_ratelimitConfigVersion.cmake \
             share/cmake/smart_ratelimit/FindSOCI.cmake share/pkgconfig/smart_ratelimit.pc; do
      [[ -f $prefix/$f ]] || { echo "consume.sh install: $f was not installed" >&2; exit 1; }
    done
    echo "installed into $prefix"
    ;;
  find_package)
    consumer_copy "$work/fp-src"
    fresh "$work/fp-build"
    run cmake -S "$work/fp-src" -B "$work/fp-build" "${gen[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCONSUMER_EXPECTED_PREFIX="$prefix" \
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCONSUMER_ADAPTERS="${adapters//,/;}"
    run cmake --build "$work/fp-build"
    check_output "$work/fp-build/consumer"
    ;;
  pkgconfig)
    adapters=""  # the .pc file describes the core only
    consumer_copy "$work/pc-src"
    flags=$(PKG_CONFIG_PATH="$prefix/share/pkgconfig" pkg-config --cflags --libs smart_ratelimit)
    [[ $flags == *"-I$prefix/share/pkgconfig/../../include"* ]] \
      || { echo "consume.sh pkgconfig: unexpected flags: $flags" >&2; exit 1; }
    # shellcheck disable=SC2086
    run "$cxx" -std=c++20 $flags -o "$work/pc-src/consumer" "$work/pc-src/main.cpp"
    check_output "$work/pc-src/consumer"
    ;;
  errors)
    consumer_copy "$work/err-src"
    expect_failure() {  # <what> <regex> <cmake args...>
      local what=$1 regex=$2; shift 2
      fresh "$work/err-build"
      if cmake -S "$work/err-src" -B "$work/err-build" "${gen[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
           -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "$@" >"$log" 2>&1; then
        echo "consume.sh errors: $what was accepted" >&2; cat "$log" >&2; exit 1
      fi
      grep -Eq "$regex" "$log" || { echo "consume.sh errors: $what: no message matching '$regex'" >&2; cat "$log" >&2; exit 1; }
      echo "$what: rejected as expected"
    }
    expect_failure "a newer minor version" 'requested version "0\.2"' -DCONSUMER_VERSION=0.2
    expect_failure "a newer major version" 'requested version "1\.0"' -DCONSUMER_VERSION=1.0
    expect_failure "an unknown component" "unknown component 'no_such_adapter'" \
      -DCONSUMER_COMPONENTS=no_such_adapter
    if [[ ,$adapters, == *,soci,* ]]; then
      expect_failure "the soci component without SOCI" "component 'soci' is installed but SOCI" \
        -DCONSUMER_COMPONENTS=soci -DCMAKE_DISABLE_FIND_PACKAGE_SOCI=ON
    fi
    ;;
  version)
    # Every installed file that states the version agrees with the VERSION file.
    same() {  # <what> <found>
      [[ $2 == "$version" ]] || { echo "consume.sh version: $1 says '$2', VERSION says '$version'" >&2; exit 1; }
      echo "$1: $2"
    }
    same "pkg-config --modversion" "$(PKG_CONFIG_PATH="$prefix/share/pkgconfig" pkg-config --modversion smart_ratelimit)"
    same "smart_ratelimitConfigVersion.cmake" \
      "$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$prefix/share/cmake/smart_ratelimit/smart_ratelimitConfigVersion.cmake")"
    same "version.hpp" \
      "$(sed -n 's/.*version_string = "\(.*\)";.*/\1/p' "$prefix/include/smart_ratelimit/version.hpp")"
    ;;
  subdirectory)
    consumer_copy "$work/sub-src"
    fresh "$work/sub-build"
    run cmake -S "$work/sub-src" -B "$work/sub-build" "${gen[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCONSUMER_MODE=subdirectory -DSMART_RATELIMIT_SOURCE_DIR="$src" -DCONSUMER_ADAPTERS="${adapters//,/;}"
    run cmake --build "$work/sub-build"
    check_output "$work/sub-build/consumer"
    ;;
  meson)
    command -v meson >/dev/null || { echo "consume.sh meson: meson is not installed" >&2; exit 1; }
    consumer_copy "$work/meson-src"
    mkdir -p "$work/meson-src/subprojects"
    ln -s "$src" "$work/meson-src/subprojects/smart_ratelimit"
    rm -rf "$work/meson-build"
    CXX=$cxx run meson setup "$work/meson-build" "$work/meson-src" \
      --force-fallback-for=smart_ratelimit -Dadapters="$adapters" -Dexpected_version="$version"
    run meson compile -C "$work/meson-build" consumer
    check_output "$work/meson-build/consumer"
    ;;
  *)
    echo "consume.sh: unknown step '$step'" >&2; exit 2 ;;
esac
