#!/usr/bin/env python3
"""The demo server's /metrics: what a Prometheus scrape of it sees.

Starts the server on 127.0.0.1 (a free port, a fresh SQLite file, small rates),
sends a known number of requests on both limited routes (allowed and blocked) and
on unlimited paths (which must not count), then fetches /metrics: 403 without the
staff token, and with `Authorization: Bearer <token>` a text exposition that
`promtool check metrics` passes without a word, whose decisions add up to the
limited requests sent, outcome by outcome, and whose event counters settle at
offered = written + dropped. Stops the server by its own PID.

usage: demo_server_metrics_test.py --server PATH
Exit codes: 0 pass, 1 fail.
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from demo_process import Failure, check, start_demo_server, stop  # noqa: E402

TOKEN = "metrics-test-staff-token-0001"
LOGIN_RATE, ITEMS_RATE = 3, 4
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset of (label, value))): float} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise Failure("not a sample line: %r" % line)
        out[(m.group(1), frozenset(LABEL.findall(m.group(2) or "")))] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def total(samples, name):
    return sum(v for (n, _), v in samples.items() if n == name)


def request(conn, method, path, headers=None):
    conn.request(method, path, headers=headers or {})
    res = conn.getresponse()
    return res.status, res.getheader("Content-Type"), res.read().decode()


def send_traffic(port):
    """Sends the requests; returns {(rule, outcome): count} of the limited ones."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    logins = [request(conn, "POST", "/api/login")[0] for _ in range(LOGIN_RATE + 2)]
    check(logins == [200] * LOGIN_RATE + [429] * 2, "POST /api/login: %d allowed, then 2 x 429" % LOGIN_RATE)
    alice = [request(conn, "GET", "/api/items", {"X-Demo-User": "alice"})[0] for _ in range(ITEMS_RATE + 3)]
    check(alice == [200] * ITEMS_RATE + [429] * 3, "GET /api/items as alice: %d allowed, then 3 x 429" % ITEMS_RATE)
    bob = [request(conn, "GET", "/api/items", {"X-Demo-User": "bob"})[0] for _ in range(2)]
    check(bob == [200, 200], "GET /api/items as bob: 2 allowed (his own budget)")
    # Unlimited: no route matches, so no rule decides them.
    unlimited = [request(conn, m, p)[0] for m, p in [("GET", "/"), ("GET", "/"), ("GET", "/favicon.ico"),
                                                      ("GET", "/missing"), ("GET", "/api/login"),
                                                      ("POST", "/api/items"), ("GET", "/ratelimit/health")]]
    check(unlimited == [200, 200, 204, 404, 404, 404, 200], "7 unlimited requests answered normally")
    conn.close()
    return {("login", "allowed"): LOGIN_RATE, ("login", "blocked"): 2,
            ("items", "allowed"): ITEMS_RATE + 2, ("items", "blocked"): 3}


def promtool_check(body):
    promtool = shutil.which("promtool")
    if promtool is None:
        check(not os.environ.get("CI"), "promtool is installed (scripts/install-deps.sh installs prometheus)")
        print("skip promtool check metrics: promtool is not installed")
        return
    p = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True, timeout=60)
    complaints = (p.stdout + p.stderr).decode().strip()
    check(p.returncode == 0 and complaints == "", "promtool check metrics: no complaint (%s)" % complaints)


def run(port):
    sent = send_traffic(port)
    limited = sum(sent.values())

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    status, _, _ = request(conn, "GET", "/metrics")
    check(status == 403, "/metrics without a token: 403")
    status, _, _ = request(conn, "GET", "/metrics", {"Authorization": "Bearer not-the-token-at-all"})
    check(status == 403, "/metrics with a wrong token: 403")
    status, ctype, body = request(conn, "GET", "/metrics", {"Authorization": "Bearer " + TOKEN})
    check(status == 200, "/metrics with the bearer token: 200")
    check(ctype == "text/plain; version=0.0.4; charset=utf-8", "Content-Type is the text exposition 0.0.4")
    promtool_check(body)

    samples = parse(body)
    check(total(samples, "smart_ratelimit_decisions_total") == limited,
          "sum(smart_ratelimit_decisions_total) == %d limited requests (the unlimited ones do not count)" % limited)
    for rule in ("login", "items"):
        for outcome in ("allowed", "blocked", "shadow_blocked", "degraded"):
            got = value(samples, "smart_ratelimit_decisions_total", rule=rule, outcome=outcome)
            want = sent.get((rule, outcome), 0)
            check(got == want, "decisions_total{rule=%s,outcome=%s} == %d (got %s)" % (rule, outcome, want, got))
    check(value(samples, "smart_ratelimit_http_requests_total", result="allowed") == LOGIN_RATE + ITEMS_RATE + 2
          and value(samples, "smart_ratelimit_http_requests_total", result="blocked") == 5,
          "the middleware's own counts: %d allowed, 5 blocked" % (LOGIN_RATE + ITEMS_RATE + 2))
    check(any(n == "smart_ratelimit_build_info" and v == 1 for (n, _), v in samples.items()),
          "smart_ratelimit_build_info is 1")
    check(value(samples, "smart_ratelimit_decision_duration_seconds_count") is not None,
          "the decision duration histogram is exported")

    # The event writer catches up: everything offered is written or dropped.
    deadline = time.monotonic() + 20
    while True:
        _, _, body = request(conn, "GET", "/metrics", {"Authorization": "Bearer " + TOKEN})
        samples = parse(body)
        ev = {r: value(samples, "smart_ratelimit_events_total", result=r)
              for r in ("offered", "written", "dropped_queue_full", "dropped_write_error", "dropped_invalid")}
        depth = value(samples, "smart_ratelimit_event_queue_depth")
        settled = None not in ev.values() and ev["offered"] == sum(v for r, v in ev.items() if r != "offered")
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(settled and depth == 0, "events_total: offered == written + dropped, queue depth 0 (%s, depth %s)"
          % (ev, depth))
    check(ev["offered"] == limited and ev["written"] == limited,
          "one event per decision, offered and written (%s)" % ev)
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="srl-metrics-")
    server = None
    try:
        server, base = start_demo_server(a.server, work, TOKEN, "--login-rate", "%d/m" % LOGIN_RATE,
                                         "--items-rate", "%d/m" % ITEMS_RATE)
        with open(os.path.join(work, "server.log")) as f:
            check(re.search(r"^metrics: +%s/metrics " % re.escape(base), f.read(), re.M),
                  "the server prints its metrics URL")
        run(int(base.rsplit(":", 1)[1]))
        check(stop(server, signal.SIGINT) == 0, "the server stops cleanly on SIGINT")
        return 0
    except (Failure, OSError, http.client.HTTPException) as e:
        print("FAIL " + (str(e) or type(e).__name__))
        return 1
    finally:
        stop(server, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
