#!/usr/bin/env python3
"""The soak under faults (run through scripts/soak.sh).

Starts a private PostgreSQL (the event log) and Redis (the limiter's state) on
127.0.0.1, the demo server on both, wrk load from 10,000 client addresses
(X-Forwarded-For from a trusted proxy), a probe client on a key of its own, and
`smart-ratelimit alerts` every 20 s as cron would, with the SMTP server refusing and
the webhook receiver hanging. Meanwhile it kills and freezes PostgreSQL and Redis in
turn. At the end it prints and checks:

- events: offered == written + dropped, each drop by reason (the demo's /metrics and
  its exit line), and the table holds at least what was reported written;
- no over-admission on the probe's key while Redis is up: admitted answers of one
  window (X-RateLimit-Reset) never exceed the limit (per Redis lifetime: a killed
  Redis forgets its counts, which is not over-admission);
- every request answered within the bound while a store is down (the probe's
  slowest answer, and no wrk timeout);
- resident memory at the end within 10% of after warm-up, where warm-up ends with the
  first cycle of all four faults: the event queue (reserved at start) and the
  connection pools reach their high-water marks only in the first outages, and a page
  reserved but never written is not resident until then. The resident size after every
  cycle is printed, so growth from cycle to cycle shows. Descriptors at the end no more
  than 15 s into the run, before any fault (plus a small allowance); no crash: the demo
  exits 0 on SIGTERM;
- every alerts run ends within its bound, with exit 1 (a channel failed) or 69
  (database down), never hanging.

Every server binds 127.0.0.1 on a port picked here and is stopped by its own PID.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from servers import Postgres, Redis, free_port, log, start_demo  # noqa: E402

ANSWER_BOUND_S = 1.0  # the longest a request may wait while a store is down
ALERT_BOUND_S = 15.0  # the longest an alerts run may take (timeouts 2 s per channel)
PROBE_RATE = "50/5s"  # the items rule; the probe asks about 25 times a second
PROBE_LIMIT = 50


class HangingReceiver:
    """Accepts connections on 127.0.0.1 and never answers (a webhook that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)


class Probe(threading.Thread):
    """GET /api/items as one client, about 25 times a second, recording each answer."""

    def __init__(self, port, state):
        super().__init__(daemon=True)
        self.port = port
        self.state = state  # shared: redis_epoch, store_down
        self.records = []  # (t, seconds, status, reset or None, epoch, store_down)
        self.errors = 0
        self.stopping = False

    def run(self):
        conn = None
        while not self.stopping:
            epoch, down = self.state["redis_epoch"], self.state["store_down"]
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/items", headers={"X-Forwarded-For": "198.51.100.77"})
                r = conn.getresponse()
                r.read()
                reset = r.getheader("X-RateLimit-Reset")
                self.records.append((t0, time.monotonic() - t0, r.status, reset, epoch,
                                     down or self.state["store_down"]))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                self.errors += 1
                self.records.append((t0, time.monotonic() - t0, 0, None, epoch, True))
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(max(0.0, 0.04 - (time.monotonic() - t0)))


def metric_values(text, name):
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            m = re.match(re.escape(name) + r'(\{[^}]*\})?\s+(\S+)', line)
            if m:
                out[m.group(1) or ""] = float(m.group(2))
    return out


def scrape(port, token):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return body if r.status == 200 else ""


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


WRK_LUA = r"""
local counter = 0
request = function()
  counter = counter + 1
  local n = math.random(0, 9999)
  local ip = "10." .. math.floor(n / 256) % 256 .. "." .. n % 256 .. ".1"
  if counter % 20 == 0 then
    return wrk.format("POST", "/api/login", {["X-Forwarded-For"] = ip}, "")
  end
  return wrk.format("GET", "/api/items", {["X-Forwarded-For"] = ip})
end
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--server", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    total = args.minutes * 60
    if total < 90:
        raise SystemExit("soak: --minutes must be at least 2 (warm-up, one cycle of the four faults, calm end)")
    for tool in ("wrk", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            raise SystemExit(f"soak: {tool} not found (scripts/install-deps.sh installs it)")

    work = tempfile.mkdtemp(prefix="srl-soak-")
    os.chmod(work, 0o755)
    pg, redis, demo, wrk = Postgres(work), Redis(work), None, None
    failures = []
    results = {}

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            failures.append(what)

    try:
        pg.start()
        redis.start()
        hang = HangingReceiver()
        smtp_refused = free_port()  # nobody listens there
        token = "soak-" + os.urandom(12).hex()
        demo, port, demo_log = start_demo(
            args.server, work, "demo",
            ["--database", pg.url, "--migrate", "--store", redis.url, "--staff-token", token,
             "--trusted-proxies", "127.0.0.1/32", "--items-rate", PROBE_RATE, "--fail-open", "on",
             "--threads", "2"])
        log(f"demo on 127.0.0.1:{port} (pid {demo.pid}); PostgreSQL :{pg.port}, Redis :{redis.port}")

        state = {"redis_epoch": 0, "store_down": False}
        probe = Probe(port, state)
        probe.start()
        lua = os.path.join(work, "soak.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        wrk_out = open(os.path.join(work, "wrk.txt"), "w+")
        wrk = subprocess.Popen(["wrk", "-t2", "-c32", f"-d{int(total)}s", "--timeout", "3s", "--latency",
                                "-s", lua, f"http://127.0.0.1:{port}"], stdout=wrk_out, stderr=subprocess.STDOUT)

        alert_runs = []

        def alerts_cron(stop):
            env = dict(os.environ, RATELIMIT_ALERT_EMAILS="ops@example.com",
                       RATELIMIT_SMTP_URL=f"smtp://127.0.0.1:{smtp_refused}",
                       RATELIMIT_ALERT_WEBHOOK=f"http://127.0.0.1:{hang.port}/hook",
                       RATELIMIT_ALERT_TIMEOUT_MS="2000", RATELIMIT_ALERT_THRESHOLD="1")
            while not stop.wait(20):
                t0 = time.monotonic()
                try:
                    rc = subprocess.run([args.cli, "alerts", "--database", pg.url, "--quiet"], env=env,
                                        capture_output=True, timeout=120).returncode
                except subprocess.TimeoutExpired:
                    rc = None
                alert_runs.append((time.monotonic() - t0, rc))

        stop_cron = threading.Event()
        cron = threading.Thread(target=alerts_cron, args=(stop_cron,), daemon=True)
        cron.start()

        started = time.monotonic()
        warm_up = 15
        time.sleep(warm_up)
        rss_start, fds_warm = rss_kb(demo.pid), fd_count(demo.pid)
        log(f"{warm_up} s in: RSS {rss_start} kB, {fds_warm} descriptors")
        rss_cycles = []  # the resident size after each full cycle of the four faults

        faults = [("Redis killed", lambda: redis.kill(), lambda: redis.start(), True),
                  ("Redis frozen", lambda: redis.freeze(), lambda: redis.thaw(), False),
                  ("PostgreSQL killed", lambda: pg.kill(), lambda: pg.start(), False),
                  ("PostgreSQL frozen", lambda: pg.freeze(), lambda: pg.thaw(), False)]
        calm, fault_s, end_calm = 8, 6, 15
        n = 0
        while time.monotonic() - started + calm + fault_s + end_calm < total:
            name, begin, end, new_epoch = faults[n % len(faults)]
            time.sleep(calm)
            log(name)
            state["store_down"] = True
            begin()
            time.sleep(fault_s)
            end()
            if new_epoch:
                state["redis_epoch"] += 1
            time.sleep(1)  # the breaker's probe closes it again
            state["store_down"] = False
            n += 1
            if n % len(faults) == 0:
                rss_cycles.append(rss_kb(demo.pid))
                log(f"cycle {len(rss_cycles)} done: RSS {rss_cycles[-1]} kB")
        results["faults"] = n
        rss_warm = rss_cycles[0] if rss_cycles else rss_start
        remaining = total - (time.monotonic() - started) - 2
        time.sleep(max(0, remaining))
        rss_end, fds_end = rss_kb(demo.pid), fd_count(demo.pid)
        log(f"end: RSS {rss_end} kB, {fds_end} descriptors")
        wrk.wait(timeout=120)
        probe.stopping = True
        probe.join(timeout=10)
        stop_cron.set()
        cron.join(timeout=ALERT_BOUND_S * 2)
        time.sleep(2)  # the sink's last batch
        metrics = scrape(port, token)
        demo.send_signal(signal.SIGTERM)
        try:
            demo_rc = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo_rc = None
        demo_log.seek(0)
        demo_text = demo_log.read()

        # ---- checks --------------------------------------------------------------
        print()
        log(f"{n} faults in {total / 60:.1f} min; checks:")
        check(n >= 4, f"every fault kind ran at least once ({n} faults)")
        check(demo_rc == 0, f"the demo exits 0 on SIGTERM (exit {demo_rc})")
        m = re.search(r"events offered (\d+), written (\d+), dropped (\d+)", demo_text)
        check(m is not None, "the demo reports its events at exit")
        if m:
            offered, written, dropped = map(int, m.groups())
            check(offered == written + dropped,
                  f"events offered {offered} == written {written} + dropped {dropped}")
            ev = metric_values(metrics, "smart_ratelimit_events_total")
            reasons = {k: int(v) for k, v in ev.items()}
            print("     events by result at the last scrape: " + json.dumps(reasons))
            by_reason = sum(v for k, v in reasons.items() if "dropped" in k)
            check(by_reason <= dropped and reasons.get('{result="offered"}', 0) <= offered,
                  f"drops are counted by reason ({by_reason} at the scrape, {dropped} at exit)")
            rows = pg.count_events()
            check(rows is not None and written <= rows <= offered,
                  f"the event table holds what was written ({rows} rows, {written} written)")
        # Over-admission: admitted answers per window, per Redis lifetime.
        windows = {}
        for t, secs, status, reset, epoch, down in probe.records:
            if status == 200 and reset is not None:
                windows.setdefault((epoch, reset), []).append(t)
        worst = max((len(v) for v in windows.values()), default=0)
        check(len(windows) >= 10, f"the probe saw {len(windows)} windows of its key")
        check(worst <= PROBE_LIMIT, f"no over-admission: at most {worst} admitted per window (limit {PROBE_LIMIT})")
        answered = [r for r in probe.records if r[2] != 0]
        slowest_down = max((r[1] for r in probe.records if r[5]), default=0.0)
        slowest = max((r[1] for r in probe.records), default=0.0)
        check(len(answered) > 0 and probe.errors == 0,
              f"every probe request answered ({len(probe.records)} sent, {probe.errors} errors)")
        check(slowest_down <= ANSWER_BOUND_S,
              f"answered within {ANSWER_BOUND_S:.1f} s while a store was down (slowest {slowest_down * 1000:.0f} ms; "
              f"{slowest * 1000:.0f} ms overall)")
        wrk_out.seek(0)
        wrk_text = wrk_out.read()
        wm = re.search(r"(\d+) requests in", wrk_text)
        timeouts = re.search(r"timeout (\d+)", wrk_text)
        check(wm is not None and int(wm.group(1)) > 0, f"wrk load ran ({wm.group(1) if wm else 0} requests)")
        check(timeouts is None or int(timeouts.group(1)) == 0,
              f"no wrk request timed out ({timeouts.group(1) if timeouts else 0})")
        check(len(rss_cycles) >= 1 and rss_end <= rss_warm * 1.10,
              f"resident memory {rss_end} kB at the end <= 110% of {rss_warm} kB after the first fault cycle "
              f"({rss_start} kB {warm_up} s in; after each cycle: {rss_cycles} kB)")
        check(fds_end <= fds_warm + 8, f"descriptors {fds_end} at the end <= {fds_warm} {warm_up} s in + 8")
        check(len(alert_runs) >= 2 and all(d <= ALERT_BOUND_S and rc in (1, 69) for d, rc in alert_runs),
              f"{len(alert_runs)} alerts runs, each failing cleanly within {ALERT_BOUND_S:.0f} s: "
              + ", ".join(f"{d:.1f} s exit {rc}" for d, rc in alert_runs))
        summary = {"minutes": args.minutes, "faults": n, "probe_requests": len(probe.records),
                   "worst_window": worst, "limit": PROBE_LIMIT, "slowest_down_ms": round(slowest_down * 1000),
                   "rss_start_kb": rss_start, "rss_cycles_kb": rss_cycles, "rss_warm_kb": rss_warm,
                   "rss_end_kb": rss_end, "fds_warm": fds_warm, "fds_end": fds_end,
                   "failures": len(failures)}
        print("soak: " + json.dumps(summary))
    finally:
        for p in (wrk, demo):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        redis.stop()
        pg.stop()
        if args.keep or failures:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        log(f"{len(failures)} check(s) failed")
        return 1
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
