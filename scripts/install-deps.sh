#!/usr/bin/env bash
# Installs the Debian 12 packages that building, testing, benchmarking and the
# demo need. Idempotent: when every package is already present it returns at once
# without touching apt.
# Usage: scripts/install-deps.sh [--with-bench] [--with-browser] [--with-soak] [--with-cluster]
set -euo pipefail

packages=(
  build-essential g++ clang libclang-rt-14-dev clang-format clang-tidy cmake ninja-build meson pkg-config git ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsoci-dev libsqlite3-dev sqlite3 libpq-dev
  catch2 libbenchmark-dev
  postgresql postgresql-contrib redis-server libhiredis-dev
  libcurl4-openssl-dev libssl-dev
  python3 python3-aiosmtpd curl procps openssl
  prometheus
)
for arg in "$@"; do
  case "$arg" in
    --with-bench) packages+=(wrk nginx golang-go golang-golang-x-time-dev libguava-java default-jdk-headless) ;;
    --with-browser) packages+=(chromium chromium-driver) ;;
    --with-soak) packages+=(wrk) ;;
    --with-cluster) packages+=(wrk nginx) ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
