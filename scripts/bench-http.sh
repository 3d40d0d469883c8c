#!/usr/bin/env bash
# HTTP throughput of the demo server under wrk on loopback, in one run:
#   none  - the same server with no limiter (the baseline)
#   limit - the limiter on GET /api/items (in memory, rate-limit headers on)
#   full  - the limiter plus event logging through the async sink to SQLite
#   nginx - Debian nginx with limit_req keyed by client address, same tiny answer
# Limits are generous so nothing is rejected (a 429 would be a cheaper answer).
# Prints requests/s and the server's CPU time per request (best of the rounds) and
# the ratios. Goals: full >= 0.90 x none, limit and full >= nginx.
# Environment: SMART_RATELIMIT_BENCH_BUILD_DIR (build-demo), BENCH_DURATION (10 s),
# BENCH_CONNECTIONS (32), BENCH_ROUNDS (2), SMART_RATELIMIT_JOBS (2).
set -euo pipefail
bench_name="bench-http"
# shellcheck source=lib/bench.sh
source "$(dirname "$0")/lib/bench.sh"

scripts/install-deps.sh --with-bench
# The demo's build directory and flags, so the two share their objects.
build=${SMART_RATELIMIT_BENCH_BUILD_DIR:-build-demo}
build_demo "$build" "$jobs"

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

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The main thread only: the demo server's I/O thread (its event writer is another thread).
io_ticks() { awk '{print $14 + $15}' "/proc/$1/task/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
# run_wrk PORT -> prints "requests/s server-CPU-us-per-request"; fails when any
# response was not 2xx. The server's CPU time (all its threads, from /proc) per
# request is the figure that survives a machine shared with other work.
run_wrk() {
  local out t0 t1 i0 i1 n
  wrk -t1 -c"$conns" -d2s "http://127.0.0.1:$1/api/items" >/dev/null  # warm-up
  t0=$(cpu_ticks "$pid"); i0=$(io_ticks "$pid")
  out=$(wrk -t1 -c"$conns" -d"${duration}s" "http://127.0.0.1:$1/api/items")
  t1=$(cpu_ticks "$pid"); i1=$(io_ticks "$pid")
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "bench-http: non-2xx responses:" >&2; echo "$out" >&2; return 1
  fi
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v r="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")" -v d="$((t1 - t0))" -v io="$((i1 - i0))" \
    -v n="$n" -v hz="$clk_tck" 'BEGIN{printf "%s %.3f %.3f\n", r, d * 1e6 / hz / n, io * 1e6 / hz / n}'
}

declare -A best=() cpu=() iocpu=()
record() { # mode req/s cpu-us io-thread-cpu-us
  if [[ -z ${best[$1]:-} ]] || awk -v a="$2" -v b="${best[$1]}" 'BEGIN{exit !(a>b)}'; then best[$1]=$2; fi
  if [[ -z ${cpu[$1]:-} ]] || awk -v a="$3" -v b="${cpu[$1]}" 'BEGIN{exit !(a<b)}'; then cpu[$1]=$3; fi
  if [[ -z ${iocpu[$1]:-} ]] || awk -v a="$4" -v b="${iocpu[$1]}" 'BEGIN{exit !(a<b)}'; then iocpu[$1]=$4; fi
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
  local res; res=$(run_wrk "$port")
  kill -INT "$pid"; wait "$pid" || true; pid=""
  record "$mode" $res
  printf '  %-6s %10.0f req/s %8.2f us CPU/req (I/O thread %.2f)   %s\n' "$mode" $res \
    "$(grep -h 'events offered' "$log" | sed 's/demo_server: stopped; //')"
}

run_nginx() {
  local port prefix="$work/nginx"
  port=$(free_port)
  mkdir -p "$prefix"
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" benchmarks/wrk/nginx.conf.in >"$prefix/nginx.conf"
  "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" &
  pid=$!
  wait_port "$port" || { cat "$prefix/error.log" >&2; exit 1; }
  local res; res=$(run_wrk "$port")
  kill -QUIT "$pid"; wait "$pid" || true; pid=""
  record nginx $res
  printf '  %-6s %10.0f req/s %8.2f us CPU/req (worker %.2f)\n' nginx $res
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
echo "best of $rounds (req/s: higher is better; server CPU per request: lower is better,"
echo "and the fair figure on a machine shared with other work):"
printf '  %-22s %10s %12s %14s %22s\n' "" "req/s" "us CPU/req" "I/O thread" "throughput per CPU"
for m in none limit full nginx; do
  case $m in none) label="no limiter";; limit) label="limiter";; full) label="limiter + SQLite log";; nginx) label="nginx limit_req";; esac
  printf '  %-22s %10.0f %12.2f %14.2f %22s\n' "$label" "${best[$m]}" "${cpu[$m]}" "${iocpu[$m]}" "$(ratio "${cpu[none]}" "${cpu[$m]}") x no limiter"
done
echo "ratios (CPU per request, i.e. throughput on a dedicated core):"
printf '  limiter + log vs no limiter   %s (goal >= 0.90; request path only: %s)\n' "$(ratio "${cpu[none]}" "${cpu[full]}")" "$(ratio "${iocpu[none]}" "${iocpu[full]}")"
printf '  limiter vs nginx              %s (goal >= 1.0)\n' "$(ratio "${cpu[nginx]}" "${cpu[limit]}")"
printf '  limiter + log vs nginx        %s (goal >= 1.0)\n' "$(ratio "${cpu[nginx]}" "${cpu[full]}")"
echo "ratios (wall-clock req/s, noisy on a shared machine):"
printf '  limiter + log vs no limiter   %s\n' "$(ratio "${best[full]}" "${best[none]}")"
printf '  limiter vs nginx              %s\n' "$(ratio "${best[limit]}" "${best[nginx]}")"
