#!/usr/bin/env python3
"""The demo server's --store: the limiters' counts where every server naming the same
store sees them, each decision off the I/O thread.

sqlite, redis, postgresql
             two servers on one store (GET /api/items at 5/m per user): three requests
             to the first and two to the second spend the user's five, then both answer
             429; the remaining counts run on from one server to the other. Redis and
             PostgreSQL are the servers scripts/test-servers.sh starts
             (SMART_RATELIMIT_TEST_REDIS_URL, SMART_RATELIMIT_TEST_PG_URL): without
             them the case is skipped (exit 77), unless SMART_RATELIMIT_REQUIRE_SERVERS=1,
             which makes it a failure. The SQLite case also checks that a store without
             its tables is refused at start-up unless --migrate creates them.
unresponsive a Redis that loads the scripts but never answers a decision (a fake on
             loopback): while a limited request waits for it, another connection is
             served at once, so the I/O thread is not the one waiting; the limited
             request then gets the 503 of a store that could not decide. After five
             such failures the store's breaker opens: requests are answered 503 without
             reaching Redis, the health probe says `breaker:store` is open and
             /metrics shows the breaker's state and the failures.

Starts each server on 127.0.0.1 (a free port, a fresh SQLite file for events) and
stops it by its own PID.

usage: demo_server_store_test.py --server PATH --case sqlite|redis|postgresql|unresponsive
Exit codes: 0 pass, 1 fail, 77 skipped (no server).
"""
import argparse
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from demo_process import Failure, check, start_demo_server, stop  # noqa: E402

TOKEN = "store-test-staff-token-001"


class Skip(Exception):
    pass


def server_url(var, what):
    url = os.environ.get(var, "")
    if url:
        return url
    if os.environ.get("SMART_RATELIMIT_REQUIRE_SERVERS") == "1":
        raise Failure("%s is not set and SMART_RATELIMIT_REQUIRE_SERVERS=1 (run under scripts/test-servers.sh)"
                      % var)
    raise Skip("%s is not set: no %s to test against (scripts/test-servers.sh starts one)" % (var, what))


def get(port, path, user):
    """(status, {lower-case field: value}) of one GET with X-Demo-User: user."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nX-Demo-User: %s\r\nConnection: close\r\n\r\n"
                   % (path, user)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    fields = {}
    for line in head[1:]:
        name, _, value = line.partition(": ")
        fields[name.lower()] = value
    return int(head[0].split(" ")[1]), fields


def port_of(base):
    return int(base.rsplit(":", 1)[1])


def shared_store(server, work, store, shown):
    """Two servers on `store`: the user's five requests a minute are shared between them."""
    user = "store-test-" + uuid.uuid4().hex  # a key of its own: the store outlives the test
    procs = []
    try:
        for name in ("a", "b"):
            os.makedirs(os.path.join(work, name))
            proc, base = start_demo_server(server, os.path.join(work, name), TOKEN, "--store", store,
                                           "--items-rate", "5/m")
            procs.append((proc, port_of(base)))
        log = open(os.path.join(work, "a", "server.log")).read()
        check(("store %s)" % shown) in log, "the server names its store: %s" % shown)
        a, b = procs[0][1], procs[1][1]
        answers = [get(a, "/api/items", user) for _ in range(3)] + [get(b, "/api/items", user) for _ in range(2)]
        check([s for s, _ in answers] == [200] * 5, "five requests for one user, three to one server and two "
              "to the other, are allowed")
        check([f.get("x-ratelimit-remaining") for _, f in answers] == ["4", "3", "2", "1", "0"],
              "the remaining count runs on from one server to the other: 4 3 2 1 0")
        for port, which in ((a, "first"), (b, "second")):
            status, fields = get(port, "/api/items", user)
            check(status == 429 and int(fields.get("retry-after", "0")) >= 1,
                  "the sixth and later requests are refused by the %s server too (429, Retry-After)" % which)
        status, fields = get(a, "/api/items", user + "-other")
        check(status == 200 and fields.get("x-ratelimit-remaining") == "4", "another user has a count of its own")
        for proc, _ in procs:
            check(stop(proc, signal.SIGINT) == 0, "the server stops cleanly on SIGINT")
    finally:
        for proc, _ in procs:
            stop(proc, signal.SIGKILL)


def case_sqlite(server, work):
    store = "sqlite:///%s/state.db" % work
    # Without its tables (the events' are there), the store is refused.
    os.makedirs(os.path.join(work, "plain"))
    proc, _ = start_demo_server(server, os.path.join(work, "plain"), TOKEN)
    stop(proc, signal.SIGINT)
    out = subprocess.run([server, "--port", "0", "--address", "127.0.0.1", "--database",
                          "sqlite:///%s/plain/events.db" % work, "--staff-token", TOKEN, "--store", store],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    text = out.stdout.decode(errors="replace")
    check(out.returncode == 78 and re.search(r"state tables of .*state\.db are missing", text) is not None,
          "a store without its tables is refused at start-up (78): " + text.strip())
    shared_store(server, work, store, store)


def case_redis(server, work):
    url = server_url("SMART_RATELIMIT_TEST_REDIS_URL", "Redis")
    shared_store(server, work, url, url)


def case_postgresql(server, work):
    url = server_url("SMART_RATELIMIT_TEST_PG_URL", "PostgreSQL")
    shared_store(server, work, url, re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url))


class FrozenRedis:
    """A Redis on loopback that answers SCRIPT LOAD (with the script's SHA-1), PING and
    anything else with OK, but never a script call: `called` is set when one arrives,
    `calls` counts them."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.called = threading.Event()
        self.calls = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        f = conn.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line.startswith(b"*"):
                    return
                args = []
                for _ in range(int(line[1:])):
                    size = int(f.readline()[1:])
                    args.append(f.read(size + 2)[:-2])
                name = args[0].upper()
                if name == b"SCRIPT" and len(args) == 3:
                    sha = hashlib.sha1(args[2]).hexdigest().encode()
                    conn.sendall(b"$40\r\n" + sha + b"\r\n")
                elif name in (b"EVALSHA", b"EVAL"):
                    with self.lock:
                        self.calls += 1
                    self.called.set()  # and no answer, ever
                elif name == b"PING":
                    conn.sendall(b"+PONG\r\n")
                else:
                    conn.sendall(b"+OK\r\n")
        except (OSError, ValueError):
            return

    def close(self):
        self.listener.close()


def case_unresponsive(server, work):
    redis = FrozenRedis()
    proc = None
    try:
        proc, base = start_demo_server(server, work, TOKEN, "--store", "redis://127.0.0.1:%d" % redis.port)
        port = port_of(base)
        limited = socket.create_connection(("127.0.0.1", port), timeout=10)
        limited.sendall(b"GET /api/items HTTP/1.1\r\nHost: x\r\nX-Demo-User: frozen\r\n\r\n")
        check(redis.called.wait(10), "the limited request's decision reaches Redis, which does not answer")
        other = socket.create_connection(("127.0.0.1", port), timeout=10)
        other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = other.recv(4096)
        pending = not select.select([limited], [], [], 0)[0]
        check(answer.startswith(b"HTTP/1.1 200 ") and pending,
              "meanwhile another connection is served at once (the I/O thread is not waiting for Redis)")
        t0 = time.monotonic()
        answer = limited.recv(4096)
        check(answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: " in answer,
              "the limited request then gets a 503 with Retry-After (the store could not decide; "
              "%.2f s later)" % (time.monotonic() - t0))
        limited.close()
        other.close()

        def limited_request():
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(b"GET /api/items HTTP/1.1\r\nHost: x\r\nX-Demo-User: frozen\r\n\r\n")
                return c.recv(4096)

        answers = [limited_request() for _ in range(6)]
        check(all(a.startswith(b"HTTP/1.1 503 ") for a in answers), "six more limited requests: 503 each")
        with redis.lock:
            reached = redis.calls
        check(reached <= 5, "the breaker opened after five failures in a row (%d decisions reached Redis)"
              % reached)
        t0 = time.monotonic()
        answers = [limited_request() for _ in range(3)]
        took = time.monotonic() - t0
        with redis.lock:
            later = redis.calls
        check(all(a.startswith(b"HTTP/1.1 503 ") for a in answers) and later == reached,
              "while it is open, requests are answered 503 without reaching Redis (3 in %.3f s)" % took)
        def staff_get(path):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Authorization: Bearer %s\r\n\r\n" % (path, TOKEN)).encode())
                answer = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        return answer
                    answer += chunk

        health = staff_get("/ratelimit/health")
        check(health.startswith(b"HTTP/1.1 503 ") and b'"name":"breaker:store","ok":false,"detail":"open"' in health,
              "the health probe reports the store's breaker open: " + health.split(b"\r\n\r\n", 1)[-1][:300].decode())
        metrics = staff_get("/metrics")
        check(b'smart_ratelimit_storage_breaker_state{storage="redis"} 2' in metrics
              and re.search(rb'smart_ratelimit_storage_errors_total\{storage="redis",kind="[a-z_]+"\} [1-9]', metrics),
              "/metrics shows the open breaker and the failures")
    finally:
        stop(proc, signal.SIGKILL)
        redis.close()


CASES = {"sqlite": case_sqlite, "redis": case_redis, "postgresql": case_postgresql,
         "unresponsive": case_unresponsive}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="srl-store-")
    try:
        CASES[a.case](a.server, work)
        return 0
    except Skip as e:
        print("skip " + str(e))
        return 77
    except (Failure, OSError) as e:
        print("FAIL " + (str(e) or type(e).__name__))
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
