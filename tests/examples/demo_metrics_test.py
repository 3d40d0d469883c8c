#!/usr/bin/env python3
"""The demo server watched as operators watch it: /metrics checked by promtool and
scraped by a real Prometheus server.

Starts the demo on 127.0.0.1 (a free port, a fresh SQLite file), sends a known
number of limited requests (allowed and blocked, on both routes) and unlimited ones,
then checks:
- /metrics answers 403 without credentials and with a wrong bearer token, and 200
  with `Authorization: Bearer <staff token>`;
- `promtool check metrics` accepts the text and prints nothing;
- the sum of smart_ratelimit_decisions_total is exactly the limited requests sent,
  split by rule and outcome as sent; unlimited requests are not counted;
- smart_ratelimit_events_total: offered = written + dropped once the writer is idle;
- a Prometheus server (127.0.0.1, a free port, a temporary data directory, scraping
  the demo every second with the bearer token) returns the same request count from
  its HTTP API. Both servers are stopped by their own PIDs.

usage: demo_metrics_test.py --server PATH [--prometheus PATH] [--promtool PATH]
Exit codes: 0 pass, 1 fail, 77 skipped (Prometheus not installed, outside CI).
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from demo_process import Failure, check, start_demo_server, stop  # noqa: E402

TOKEN = "metrics-test-staff-token-0001"
SAMPLE = re.compile(r'^(\w+)(?:\{([^}]*)\})? (\S+)$')


def http(method, url, headers=None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text, name):
    """{labels string: value} of every sample of `name`."""
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            out[m.group(2) or ""] = float(m.group(3))
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    args = ap.parse_args()
    if not (os.access(args.prometheus, os.X_OK) and os.access(args.promtool, os.X_OK)):
        if os.environ.get("CI"):
            print("FAIL prometheus and promtool are required in CI (scripts/install-deps.sh installs them)")
            return 1
        print("skip prometheus/promtool not installed (Debian package prometheus)")
        return 77

    work = tempfile.mkdtemp(prefix="srl-metrics-")
    demo = prom = None
    try:
        demo, base = start_demo_server(args.server, work, TOKEN, "--login-rate", "3/m", "--items-rate", "5/m")
        sent = {("login", "allowed"): 0, ("login", "blocked"): 0, ("items", "allowed"): 0, ("items", "blocked"): 0}
        for _ in range(7):  # 3 allowed, 4 blocked
            status, _ = http("POST", base + "/api/login")
            sent[("login", "allowed" if status == 200 else "blocked")] += 1
        for _ in range(9):  # 5 allowed, 4 blocked
            status, _ = http("GET", base + "/api/items")
            sent[("items", "allowed" if status == 200 else "blocked")] += 1
        for _ in range(5):  # not limited: no route matches
            http("GET", base + "/")
        check(sent == {("login", "allowed"): 3, ("login", "blocked"): 4, ("items", "allowed"): 5,
                       ("items", "blocked"): 4}, "the limits answered as configured (%s)" % sent)
        limited = sum(sent.values())

        status, _ = http("GET", base + "/metrics")
        check(status == 403, "/metrics without credentials is 403 (%d)" % status)
        status, _ = http("GET", base + "/metrics", {"Authorization": "Bearer wrong-token-0000000000"})
        check(status == 403, "/metrics with a wrong bearer token is 403 (%d)" % status)
        status, text = http("GET", base + "/metrics", {"Authorization": "Bearer " + TOKEN})
        check(status == 200 and "smart_ratelimit_decisions_total" in text, "/metrics with the bearer token is 200")

        tool = subprocess.run([args.promtool, "check", "metrics"], input=text.encode(), capture_output=True,
                              timeout=60)
        check(tool.returncode == 0 and not tool.stdout.strip() and not tool.stderr.strip(),
              "promtool check metrics accepts the text (%r %r)" % (tool.stdout[:300], tool.stderr[:300]))

        decisions = samples(text, "smart_ratelimit_decisions_total")
        check(sum(decisions.values()) == limited,
              "the decisions add up to the %d limited requests (%s)" % (limited, decisions))
        for (rule, outcome), n in sent.items():
            key = 'rule="%s",outcome="%s"' % (rule, outcome)
            check(decisions.get(key) == n, "%s = %d" % (key, n))
        for outcome in ("shadow_blocked", "degraded"):
            check(decisions.get('rule="login",outcome="%s"' % outcome) == 0, "login %s is a zero series" % outcome)
        check(samples(text, "smart_ratelimit_build_info"), "build_info is exported")

        events = {}
        for _ in range(100):  # the writer flushes within its max delay
            _, text = http("GET", base + "/metrics", {"Authorization": "Bearer " + TOKEN})
            events = samples(text, "smart_ratelimit_events_total")
            if events.get('result="written"') == limited:
                break
            time.sleep(0.1)
        dropped = sum(v for k, v in events.items() if k.startswith('result="dropped'))
        check(events.get('result="offered"') == limited and events.get('result="written"', 0) + dropped == limited,
              "events offered = written + dropped = %d (%s)" % (limited, events))

        # A real Prometheus server scrapes the demo with the bearer token.
        port = free_port()
        target = base.split("//", 1)[1]
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: smart_ratelimit_demo\n    metrics_path: /metrics\n"
                    "    authorization:\n      type: Bearer\n      credentials: %s\n"
                    "    static_configs:\n      - targets: ['%s']\n" % (TOKEN, target))
        tool = subprocess.run([args.promtool, "check", "config", config], capture_output=True, timeout=60)
        check(tool.returncode == 0, "promtool check config accepts the scrape config")
        prom_log = open(os.path.join(work, "prometheus.log"), "w")
        prom = subprocess.Popen([args.prometheus, "--config.file=" + config,
                                 "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % port], stdout=prom_log, stderr=subprocess.STDOUT)
        query = "http://127.0.0.1:%d/api/v1/query?%s" % (
            port, urllib.parse.urlencode({"query": "sum(smart_ratelimit_decisions_total)"}))
        seen = None
        deadline = time.time() + 60
        while time.time() < deadline and prom.poll() is None:
            try:
                status, body = http("GET", query)
                result = json.loads(body).get("data", {}).get("result", []) if status == 200 else []
                if result:
                    seen = float(result[0]["value"][1])
                    if seen == limited:
                        break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        check(seen == limited, "Prometheus scraped the demo and counts %s decisions (want %d)" % (seen, limited))
        return 0
    except Failure as e:
        print("FAIL " + str(e))
        for log in ("server.log", "prometheus.log"):
            path = os.path.join(work, log)
            if os.path.exists(path):
                print("--- %s (tail)" % log)
                print("".join(open(path).readlines()[-20:]))
        return 1
    finally:
        if prom is not None:
            stop(prom)
        stop(demo)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
