#!/usr/bin/env bash
# Formats every C++ file of the project with clang-format (the .clang-format at the
# root), or with --check only reports the files that differ (exit 1), as CI does.
# Usage: scripts/format.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -- 'include/*.hpp' 'tools/*.cpp' 'tools/*.hpp' 'examples/*.cpp' \
                       'tests/*.cpp' 'tests/*.hpp' 'benchmarks/*.cpp' 'benchmarks/*.hpp' 'fuzz/*.cpp' 'fuzz/*.hpp')
if [[ ${1:-} == --check ]]; then
  clang-format --dry-run -Werror "${files[@]}"
  echo "format: ${#files[@]} files as .clang-format says"
else
  clang-format -i "${files[@]}"
fi
