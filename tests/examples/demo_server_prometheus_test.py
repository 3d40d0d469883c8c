#!/usr/bin/env python3
"""A real Prometheus server scrapes the demo server's /metrics with the staff token.

Starts the demo on 127.0.0.1 (a free port, a fresh SQLite file), sends it a known
number of limited requests (allowed and blocked) and a few unlimited ones, then
starts /usr/bin/prometheus bound to 127.0.0.1 on a free port, with a temporary
TSDB and a configuration that scrapes the demo every second with
`authorization: {type: Bearer, credentials: <token>}`. Polls Prometheus' HTTP API
until `sum(smart_ratelimit_decisions_total)` equals the requests sent (at most
30 s). Stops both servers by their own PIDs.

usage: demo_server_prometheus_test.py --server PATH [--prometheus PATH]
Exit codes: 0 pass, 1 fail, 77 skipped (prometheus not installed and CI unset).
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from demo_process import Failure, check, start_demo_server, stop  # noqa: E402
from ports import free_port  # noqa: E402

TOKEN = "prometheus-test-staff-token-01"
CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: smart_ratelimit_demo
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: {token}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def send_traffic(port):
    """Limited requests, allowed and blocked, on both routes; returns how many."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    statuses = []
    for method, path, n in [("POST", "/api/login", 4), ("GET", "/api/items", 5)]:
        for _ in range(n):
            conn.request(method, path)
            res = conn.getresponse()
            res.read()
            statuses.append(res.status)
    for path in ("/", "/favicon.ico", "/missing"):  # unlimited: not counted
        conn.request("GET", path)
        conn.getresponse().read()
    conn.close()
    check(statuses == [200, 200, 429, 429, 200, 200, 200, 429, 429],
          "9 limited requests: 2 + 3 allowed, 2 + 2 blocked")
    return len(statuses)


def query(port, expr):
    """The instant vector's values for `expr`, or None when Prometheus cannot answer yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/v1/query?query=" + urllib.parse.quote(expr))
        res = conn.getresponse()
        body = res.read()
        if res.status != 200:
            return None
        doc = json.loads(body)
        if doc.get("status") != "success":
            return None
        return [float(r["value"][1]) for r in doc["data"]["result"]]
    except (OSError, http.client.HTTPException, ValueError):
        return None  # still starting
    finally:
        conn.close()


def start_prometheus(binary, config, work):
    """Prometheus on a free port, ready; (process, port, log). A free port can be taken
    by a test beside this one before Prometheus binds it: then it exits, and the next
    attempt takes another port."""
    log = open(os.path.join(work, "prometheus.log"), "w+")
    for _ in range(5):
        port = free_port()
        prom = subprocess.Popen([binary, "--config.file=" + config,
                                 "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=subprocess.STDOUT, cwd=work)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and prom.poll() is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/-/ready")
                if conn.getresponse().status == 200 and prom.poll() is None:
                    return prom, port, log
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.2)
        stop(prom, signal.SIGKILL)
    log.seek(0)
    raise Failure("Prometheus did not start on 5 free ports; its log:\n" + log.read()[-3000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    a = ap.parse_args()
    if not os.access(a.prometheus, os.X_OK):
        if os.environ.get("CI"):
            print("FAIL %s is not installed (scripts/install-deps.sh installs the prometheus package)"
                  % a.prometheus)
            return 1
        print("SKIP %s is not installed (scripts/install-deps.sh installs the prometheus package)" % a.prometheus)
        return 77
    work = tempfile.mkdtemp(prefix="srl-prometheus-")
    server = prom = None
    try:
        server, base = start_demo_server(a.server, work, TOKEN, "--login-rate", "2/m", "--items-rate", "3/m")
        demo_port = int(base.rsplit(":", 1)[1])
        sent = send_traffic(demo_port)

        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write(CONFIG.format(token=TOKEN, port=demo_port))
        prom, prom_port, prom_log = start_prometheus(a.prometheus, config, work)

        got, up, deadline = None, None, time.monotonic() + 30
        while time.monotonic() < deadline and prom.poll() is None:
            up = query(prom_port, 'up{job="smart_ratelimit_demo"}')
            got = query(prom_port, "sum(smart_ratelimit_decisions_total)")
            if got == [float(sent)]:
                break
            time.sleep(0.2)
        if got != [float(sent)]:
            prom_log.seek(0)
            print("prometheus log:\n" + prom_log.read()[-3000:])
        check(up == [1.0], "Prometheus scrapes the demo with the bearer token (up == 1, got %s)" % up)
        check(got == [float(sent)], "Prometheus: sum(smart_ratelimit_decisions_total) == %d (got %s)" % (sent, got))
        blocked = query(prom_port, 'sum(smart_ratelimit_decisions_total{outcome="blocked"})')
        check(blocked == [4.0], "Prometheus: 4 of them blocked (got %s)" % blocked)

        check(stop(prom, signal.SIGTERM) == 0, "Prometheus stops cleanly on SIGTERM")
        check(stop(server, signal.SIGINT) == 0, "the demo server stops cleanly on SIGINT")
        return 0
    except (Failure, OSError, http.client.HTTPException) as e:
        print("FAIL " + (str(e) or type(e).__name__))
        return 1
    finally:
        stop(prom, signal.SIGKILL)
        stop(server, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
