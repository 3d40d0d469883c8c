#!/usr/bin/env bash
# HTTP throughput of the demo server under wrk on loopback, in one run:
#   none  - the same server with no limiter (the baseline)
#   limit - the limiter on GET /api/items (in memory, rate-limit headers on)
#   full  - the limiter plus event logging through the async sink to SQLite
#   nginx - Debian nginx with limit_req keyed by client address, same tiny answer
# Limits are generous so nothing is rejected (a 429 would be a cheaper answer).
# Prints requests/s (best of the rounds) and the ratios. Goals: full >= 0.90 x none,
# limit and full >= nginx.
# Environment: SMART_RATELIMIT_BENCH_BUILD_DIR (build-demo), BENCH_DURATION (10 s),
# BENCH_CONNECTIONS (32), BENCH_ROUNDS (2), SMART_RATELIMIT_JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/install-deps.sh --with-bench
# The demo's build directory and flags, so the two share their objects.
build=${SMART_RATELIMIT_BENCH_BUILD_DIR:-build-demo}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSMART_RATELIMIT_BUILD_TESTS=OFF -DSMART_RATELIMIT_BUILD_BENCHMARKS=OFF \
  -DSMART_RATELIMIT_BUILD_TOOLS=ON -DSMART_RATELIMIT_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j "${SMART_RATELIMIT_JOBS:-2}" --target demo_server smart-ratelimit

duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-32}
rounds=${BENCH_ROUNDS:-2}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
work=$(mktemp -d /tmp/srl-bench-http.XXXXXX)
pid=""
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# run_wrk PORT -> prints requests/s; fails when any response was not 2xx.
run_wrk() {
  local out
  wrk -t1 -c"$conns" -d2s "http://127.0.0.1:$1/api/items" >/dev/null  # warm-up
  out=$(wrk -t1 -c"$conns" -d"${duration}s" "http://127.0.0.1:$1/api/items")
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "bench-http: non-2xx responses:" >&2; echo "$out" >&2; return 1
  fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

declare -A best=()
record() { # mode value
  if [[ -z ${best[$1]:-} ]] || awk -v a="$2" -v b="${best[$1]}" 'BEGIN{exit !(a>b)}'; then best[$1]=$2; fi
}

run_demo() { # mode
  local mode=$1 db="sqlite:///$work/events-$1.db" port log="$work/demo-$1.log"
  rm -f "$work/events-$1.db"*
  "$build/tools/smart-ratelimit" migrate --database "$db" >/dev/null
  port=$(free_port)
  "$build/examples/demo_server" --port "$port" --mode "$mode" --database "$db" \
    --staff-token bench-staff-token-0 --items-rate 1000000000/m >"$log" 2>&1 &
  pid=$!
  wait_port "$port" || { cat "$log" >&2; exit 1; }
  local rps; rps=$(run_wrk "$port")
  kill -INT "$pid"; wait "$pid" || true; pid=""
  record "$mode" "$rps"
  printf '  %-6s %10.0f req/s   %s\n' "$mode" "$rps" "$(grep -h 'events offered' "$log" | sed 's/demo_server: stopped; //')"
}

run_nginx() {
  local port prefix="$work/nginx"
  port=$(free_port)
  mkdir -p "$prefix"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" benchmarks/wrk/nginx.conf.in >"$prefix/nginx.conf"
  "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
  pid=$!
  wait_port "$port" || { cat "$prefix/error.log" >&2; exit 1; }
  local rps; rps=$(run_wrk "$port")
  kill -QUIT "$pid"; wait "$pid" || true; pid=""
  record nginx "$rps"
  printf '  %-6s %10.0f req/s\n' nginx "$rps"
}

echo "bench-http: wrk -t1 -c$conns -d${duration}s GET /api/items on 127.0.0.1, $rounds round(s), server on 1 I/O thread"
for r in $(seq "$rounds"); do
  echo "round $r:"
  run_demo none
  run_demo limit
  run_demo full
  run_nginx
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
echo
echo "best of $rounds:"
printf '  no limiter           %10.0f req/s\n' "${best[none]}"
printf '  limiter              %10.0f req/s   %s x no limiter\n' "${best[limit]}" "$(ratio "${best[limit]}" "${best[none]}")"
printf '  limiter + SQLite log %10.0f req/s   %s x no limiter (goal >= 0.90)\n' "${best[full]}" "$(ratio "${best[full]}" "${best[none]}")"
printf '  nginx limit_req      %10.0f req/s\n' "${best[nginx]}"
printf '  limiter / nginx                         %s (goal >= 1.0)\n' "$(ratio "${best[limit]}" "${best[nginx]}")"
printf '  limiter + log / nginx                   %s (goal >= 1.0)\n' "$(ratio "${best[full]}" "${best[nginx]}")"
