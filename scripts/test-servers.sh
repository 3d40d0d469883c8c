#!/usr/bin/env bash
# Starts a private PostgreSQL and a private Redis on 127.0.0.1, on free ports, in a
# temporary directory; runs the given command with SMART_RATELIMIT_TEST_PG_URL and
# SMART_RATELIMIT_TEST_REDIS_URL set; then stops both servers by their own PIDs.
# Usage: scripts/test-servers.sh <command> [args...]
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[[ -x "$pg_bin/initdb" ]] || { echo "test-servers: PostgreSQL server binaries not found" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "test-servers: redis-server not found" >&2; exit 1; }

work=$(mktemp -d /tmp/srl-servers.XXXXXX)
pg_pid="" ; redis_pid=""
cleanup() {
  [[ -n $redis_pid ]] && kill "$redis_pid" 2>/dev/null || true
  if [[ -n $pg_pid ]]; then
    kill -INT "$pg_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: run it as the postgres system user when root
# (setpriv execs in place, so $! is the postmaster itself).
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
  chown postgres: "$work"
fi
pg_port=$(free_port)
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -U srl --auth=trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$pg_bin/postgres" -D "$work/pg" -p "$pg_port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$work" -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off -c max_connections=200 >"$work/pg.log" 2>&1 &
pg_pid=$!
for _ in $(seq 100); do
  "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
  kill -0 "$pg_pid" 2>/dev/null || { cat "$work/pg.log" >&2; exit 1; }
  sleep 0.1
done
"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || { echo "test-servers: PostgreSQL did not start" >&2; exit 1; }
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U srl srl_test

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
  --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
  redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.05
done

export SMART_RATELIMIT_TEST_PG_URL="postgresql://srl@127.0.0.1:${pg_port}/srl_test"
export SMART_RATELIMIT_TEST_REDIS_URL="redis://127.0.0.1:${redis_port}"
export SMART_RATELIMIT_TEST_PG_BIN="$pg_bin"
echo "test-servers: PostgreSQL on 127.0.0.1:$pg_port (pid $pg_pid), Redis on 127.0.0.1:$redis_port (pid $redis_pid)"
"$@"
