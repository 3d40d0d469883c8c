# scripts/lib/common.sh
# Helpers shared by the scripts in scripts/, sourced (not run): a free loopback port,
# and the demo's Release build that demo.sh and bench-http.sh share (same directory
# and flags, so the two share their objects).
# shellcheck shell=bash

# Prints a TCP port on 127.0.0.1 that is free at the moment of asking.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# build_demo <build-dir> [jobs]: configures <build-dir> (Release, tools and examples,
# no tests or benchmarks) and builds demo_server and smart-ratelimit in it.
build_demo() {
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=OFF \
    -DSMART_RATELIMIT_BUILD_TOOLS=ON -DSMART_RATELIMIT_BUILD_EXAMPLES=ON >/dev/null
  cmake --build "$1" -j "${2:-2}" --target demo_server smart-ratelimit
}
