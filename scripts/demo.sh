#!/usr/bin/env bash
# The README's demo command: installs the Debian packages, builds the demo server and
# the smart-ratelimit tool (Release, two jobs), creates the event tables in a SQLite
# file, starts examples/demo_server on 127.0.0.1, drives some synthetic traffic
# through it (so the dashboard shows blocked keys), prints the dashboard URL and the
# staff token, and keeps serving until Ctrl-C (which flushes the event queue).
# Environment: SMART_RATELIMIT_DEMO_BUILD_DIR (build-demo), SMART_RATELIMIT_DEMO_PORT
# (8080, or a free port when 8080 is taken), SMART_RATELIMIT_JOBS (2),
# SMART_RATELIMIT_DEMO_EXIT=1 to stop after the traffic instead of waiting for Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=lib/common.sh
source scripts/lib/common.sh

scripts/install-deps.sh
build=${SMART_RATELIMIT_DEMO_BUILD_DIR:-build-demo}
build_demo "$build" "${SMART_RATELIMIT_JOBS:-2}"

run_dir="$root/$build/demo"
mkdir -p "$run_dir"
db_url="sqlite:///$run_dir/events.db"   # four slashes: an absolute path
rm -f "$run_dir"/events.db "$run_dir"/events.db-*   # a fresh log for each demo run
"$build/tools/smart-ratelimit" migrate --database "$db_url"

port=${SMART_RATELIMIT_DEMO_PORT:-8080}
if ! python3 -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; then
  echo "demo: port $port is taken, letting the server pick one"
  port=0
fi

log="$run_dir/server.log"
# 127.0.0.1 is a trusted proxy here so the traffic below can pose as several
# clients with X-Forwarded-For (the limiter ignores that header from anyone else).
"$build/examples/demo_server" --address 127.0.0.1 --port "$port" --database "$db_url" \
  --trusted-proxies 127.0.0.1/32 >"$log" 2>&1 &
server_pid=$!
stop_server() {
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -INT "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    tail -n 2 "$log"
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

for _ in $(seq 100); do
  grep -q '^staff token: ' "$log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
base=$(sed -n 's|^demo_server: listening on \(http://[^ ]*\)/ .*|\1|p' "$log")
token=$(sed -n 's/^staff token: //p' "$log")
[[ -n $base && -n $token ]] || { echo "demo: the server did not start" >&2; cat "$log" >&2; exit 1; }

codes() { sort | uniq -c | awk '{printf "%s x%s  ", $2, $1}'; echo; }
echo "demo: synthetic traffic against $base"
printf '  login  203.0.113.5  x12: '; curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'X-Forwarded-For: 203.0.113.5' "$base/api/login?n=[1-12]" | codes
printf '  login  198.51.100.7 x8:  '; curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'X-Forwarded-For: 198.51.100.7' "$base/api/login?n=[1-8]" | codes
printf '  login  2001:db8::42 x7:  '; curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'X-Forwarded-For: 2001:db8::42' "$base/api/login?n=[1-7]" | codes
printf '  login  192.0.2.10   x3:  '; curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'X-Forwarded-For: 192.0.2.10' "$base/api/login?n=[1-3]" | codes
printf '  items  user alice   x130: '; curl -s -o /dev/null -w '%{http_code}\n' -H 'X-Demo-User: alice' "$base/api/items?n=[1-130]" | codes
printf '  items  user bob     x40: '; curl -s -o /dev/null -w '%{http_code}\n' -H 'X-Demo-User: bob' "$base/api/items?n=[1-40]" | codes
printf '  items  203.0.113.9  x115: '; curl -s -o /dev/null -w '%{http_code}\n' -H 'X-Forwarded-For: 203.0.113.9' "$base/api/items?n=[1-115]" | codes
printf '  items  hostile user id x104: '; curl -s -o /dev/null -w '%{http_code}\n' -H 'X-Demo-User: <script>alert(1)</script>' "$base/api/items?n=[1-104]" | codes

cat <<EOF

The demo server is running (pid $server_pid, log $log, events in $run_dir/events.db).
  Dashboard:   $base/ratelimit/dashboard/
  Sign in:     $base/ratelimit/signin   (paste the staff token; the chart refreshes itself every 30 s)
  Health:      $base/ratelimit/health   (status for anyone; every check with the staff token)
  Staff token: $token
  From a shell: curl -H 'Authorization: Bearer $token' $base/ratelimit/dashboard/offenders.csv
  Report:       $build/tools/smart-ratelimit report --database '$db_url'
Press Ctrl-C to stop (the event queue is flushed on the way out).
EOF

if [[ ${SMART_RATELIMIT_DEMO_EXIT:-0} == 1 ]]; then
  sleep 1
  curl -s -H "Authorization: Bearer $token" "$base/ratelimit/dashboard/offenders.csv"
  exit 0
fi
wait "$server_pid"
