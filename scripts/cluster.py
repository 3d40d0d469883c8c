#!/usr/bin/env python3
"""Several servers working as one (run through scripts/cluster.sh).

Starts on 127.0.0.1: a private PostgreSQL (the shared event log), a three-master Redis
Cluster (the shared limiter state), three demo servers on both, and nginx in front of
them as a round-robin load balancer. Drives traffic through nginx from 10,000 client
addresses (wrk) while a probe hammers one address of its own, then checks:

- the hammered key is admitted exactly its limit in every whole window, whichever node
  answered (no over-admission, no under-admission);
- the dashboard's CSV and JSON answers are byte for byte the same on all three nodes
  (but for the timeline's first bucket start, which is the moment of asking less the
  window);
- three `smart-ratelimit alerts` runs at once (cron on three machines) send each alert
  once: the webhook receives every offender exactly one time.

With --check it prints one JSON line (nodes, admitted, limit, dashboards_equal,
alerts_sent, alerts_expected, ...) and exits 0 only when all of that holds.
"""
import argparse
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from servers import Postgres, RedisCluster, free_port, start_demo  # noqa: E402

LIMIT, PERIOD_S = 100, 10  # the items rule of the hammered key
PROBE_ADDRESS = "203.0.113.9"


def log(msg):
    print(f"cluster: [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


NGINX_CONF = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  fastcgi_temp_path {work}/nginx-fastcgi;
  uwsgi_temp_path {work}/nginx-uwsgi;
  scgi_temp_path {work}/nginx-scgi;
  upstream demo {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
"""

WRK_LUA = r"""
request = function()
  local n = math.random(0, 9999)
  local ip = "10." .. math.floor(n / 256) % 256 .. "." .. n % 256 .. ".7"
  return wrk.format("GET", "/api/items", {["X-Forwarded-For"] = ip})
end
"""


class Receiver(http.server.BaseHTTPRequestHandler):
    """The webhook: records each POST body."""
    bodies = []
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with Receiver.lock:
            Receiver.bodies.append(body.decode())
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def get(port, path, token=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def comparable(path, status, body):
    """(status, body) with the one field that is the request's own time masked: the
    timeline's first bucket starts `days` before the moment of asking, to the
    millisecond, so it differs between any two requests; every count stays."""
    if "timeline.json" in path and status == 200:
        doc = json.loads(body)
        if doc.get("buckets"):
            doc["buckets"][0]["start"] = "<the request's time less the window>"
        body = json.dumps(doc, sort_keys=True).encode()
    return status, body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--seconds", type=int, default=45, help="how long the probe hammers (default 45)")
    ap.add_argument("--check", action="store_true", help="print one JSON line; exit 0 only when all holds")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "redis-server", "redis-cli"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            raise SystemExit(f"cluster: {tool} not found (scripts/install-deps.sh --with-cluster)")
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"

    work = tempfile.mkdtemp(prefix="srl-cluster-")
    os.chmod(work, 0o755)
    pg, rc = Postgres(work), RedisCluster(work)
    demos, nginx, wrk, webhook = [], None, None, None
    result = {"nodes": 0}
    ok = False
    try:
        pg.start()
        rc.start()
        subprocess.run([args.cli, "migrate", "--database", pg.url], check=True, capture_output=True)
        token = "cluster-" + os.urandom(12).hex()
        ports = []
        for i in range(3):
            d, port, _ = start_demo(args.server, work, f"node{i}",
                                    ["--database", pg.url, "--store", rc.url, "--staff-token", token,
                                     "--trusted-proxies", "127.0.0.1/32", "--items-rate",
                                     f"{LIMIT}/{PERIOD_S}s", "--live-refresh-ms", "0"], who="cluster")
            demos.append(d)
            ports.append(port)
        lb = free_port()
        with open(os.path.join(work, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(work=work, port=lb,
                                      servers="\n".join(f"    server 127.0.0.1:{p};" for p in ports)))
        nginx = subprocess.Popen([nginx_bin, "-p", work, "-c", os.path.join(work, "nginx.conf"), "-g",
                                  "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                if get(lb, "/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        log(f"nginx :{lb} -> demo :{ports[0]}, :{ports[1]}, :{ports[2]}; PostgreSQL :{pg.port}; {rc.url}")
        result["nodes"] = len(ports)

        lua = os.path.join(work, "load.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        wrk = subprocess.Popen(["wrk", "-t1", "-c16", f"-d{args.seconds + 2}s", "-s", lua,
                                f"http://127.0.0.1:{lb}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # The probe: one address through nginx, several times its limit.
        windows = {}
        conn = http.client.HTTPConnection("127.0.0.1", lb, timeout=10)
        end = time.monotonic() + args.seconds
        sent = 0
        while time.monotonic() < end:
            conn.request("GET", "/api/items", headers={"X-Forwarded-For": PROBE_ADDRESS})
            r = conn.getresponse()
            r.read()
            sent += 1
            reset = r.getheader("X-RateLimit-Reset")
            if reset is not None:
                w = windows.setdefault(reset, [0, 0])
                w[0 if r.status == 200 else 1] += 1
            time.sleep(0.01)
        conn.close()
        wrk.wait(timeout=60)
        # X-RateLimit-Reset is whole Unix seconds computed per answer from each node's
        # clocks, so one window's answers can name neighbouring seconds: resets less than
        # a third of a period apart are one window. Whole windows only: the first and the
        # last may be cut by the probe's start and end.
        merged = []
        for reset in sorted(windows, key=int):
            if merged and int(reset) - merged[-1][0] < PERIOD_S / 3:
                merged[-1][1][0] += windows[reset][0]
                merged[-1][1][1] += windows[reset][1]
            else:
                merged.append((int(reset), list(windows[reset])))
        whole = [counts for _, counts in merged[1:-1]]
        admitted = [a for a, _ in whole]
        result.update({"limit": LIMIT, "windows": len(whole), "admitted": admitted,
                       "probe_requests": sent})
        admitted_ok = len(whole) >= 2 and all(a == LIMIT for a in admitted)

        # The event log settles (the sinks write within their max delay), then every
        # node answers the dashboard from the same rows.
        last, stable = None, 0
        while stable < 3:
            n = pg.count_events()
            stable = stable + 1 if n == last else 0
            last = n
            time.sleep(0.5)
        paths = ["/ratelimit/dashboard/offenders.csv?days=1",
                 "/ratelimit/dashboard/timeline.json?days=1",
                 f"/ratelimit/dashboard/offender/?key=ip:{PROBE_ADDRESS}&days=1"]
        answers = [[comparable(path, *get(p, path, token)) for path in paths] for p in ports]
        dashboards_equal = all(a == answers[0] for a in answers) and all(s == 200 for s, _ in answers[0])
        result["dashboards_equal"] = dashboards_equal
        if not dashboards_equal:  # which answers differ, each node's kept in the work directory
            result["dashboards_differ"] = [path for i, path in enumerate(paths)
                                           if any(a[i] != answers[0][i] for a in answers)]
            for n, node_answers in enumerate(answers):
                for i, (status, body) in enumerate(node_answers):
                    with open(os.path.join(work, f"node{n}-answer{i}.txt"), "wb") as f:
                        f.write(f"{status} {paths[i]}\n".encode() + body)
        result["events"] = last

        # Alerts: three runs at once against the shared event log, one webhook.
        hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        webhook = hook
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        env = dict(os.environ, RATELIMIT_ALERT_THRESHOLD="50", RATELIMIT_ALERT_COOLDOWN_MINUTES="60",
                   RATELIMIT_ALERT_WEBHOOK=f"http://127.0.0.1:{hook.server_address[1]}/hook",
                   RATELIMIT_ALERT_TIMEOUT_MS="5000")
        dry = subprocess.run([args.cli, "alerts", "--database", pg.url, "--dry-run", "--json"], env=env,
                             capture_output=True, text=True, check=True)
        expected = [o["key"] for o in json.loads(dry.stdout)["offenders"]]
        runs = [subprocess.Popen([args.cli, "alerts", "--database", pg.url, "--quiet"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        codes = [r.wait(timeout=120) for r in runs]
        sent_keys = [o["key"] for b in Receiver.bodies for o in json.loads(b)["offenders"]]
        result.update({"alerts_sent": len(sent_keys), "alerts_expected": len(expected),
                       "alert_exit_codes": codes})
        alerts_ok = (sorted(sent_keys) == sorted(expected) and len(expected) >= 1
                     and all(c == 0 for c in codes))
        ok = admitted_ok and dashboards_equal and alerts_ok
        result["ok"] = ok
        if args.check:
            print(json.dumps(result))
        else:
            log(f"admitted per whole window: {admitted} (limit {LIMIT})")
            log(f"dashboards equal on {len(ports)} nodes: {dashboards_equal} ({last} events)")
            log(f"alerts: {len(sent_keys)} sent by 3 runs at once, {len(expected)} expected, exits {codes}")
            log("all checks passed" if ok else "a check failed")
    finally:
        if webhook is not None:
            webhook.shutdown()
        for p in [wrk, nginx] + demos:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        rc.stop()
        pg.stop()
        if args.keep or not ok:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
