#!/usr/bin/env python3
"""A real browser against the demo server's dashboard.

Starts examples/demo_server on 127.0.0.1 (a free port, a fresh SQLite file), sends
traffic that gets keys blocked (one with a hostile user id), then drives headless
Chromium through chromedriver (W3C WebDriver over HTTP, standard library only):
the dashboard refuses an anonymous browser, the sign-in form (with its CSRF field)
sets a session cookie that is not the token, and the rendered page has its tables, the SVG chart, the stylesheet allowed by the CSP,
only the dashboard's own live-refresh script, which redraws the chart from
timeline.json (a short interval here); an offender link opens the HTML drill-down,
which links to the JSON; signing out ends the session on the server (its cookie
replayed is refused); and no console error or CSP violation anywhere. Also the
health endpoint with and without the staff token. Saves screenshots.
Every process it starts is stopped by its own PID.

usage: dashboard_browser_test.py --server PATH [--artifacts DIR]
Exit codes: 0 pass, 1 fail, 77 skipped (no chromium/chromedriver installed).
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from demo_process import Failure, check, start_demo_server, stop  # noqa: E402
from ports import free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-test-staff-token-0001"
HOSTILE = "<script>alert(1)</script>"


def http(method, url, headers=None, body=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class WebDriver:
    """The few W3C WebDriver commands the test needs."""

    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.session = None

    def call(self, method, path, payload=None, timeout=60):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read().decode())["value"]
        except urllib.error.HTTPError as e:
            raise Failure("webdriver %s %s: %s" % (method, path, e.read().decode()[:500]))

    def start(self, user_data_dir):
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1700",
                "--user-data-dir=" + user_data_dir]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}}
        self.session = self.call("POST", "/session", caps, timeout=120)["sessionId"]

    def s(self, path):
        return "/session/%s%s" % (self.session, path)

    def go(self, url):
        self.call("POST", self.s("/url"), {"url": url})

    def url(self):
        return self.call("GET", self.s("/url"))

    def source(self):
        return self.call("GET", self.s("/source"))

    def find(self, css):
        found = self.call("POST", self.s("/elements"), {"using": "css selector", "value": css})
        return [e.get("element-6066-11e4-a52e-4f735e2e0e3c") or e.get("ELEMENT") or next(iter(e.values()))
                for e in found]

    def type(self, element, text):
        self.call("POST", self.s("/element/%s/value" % element), {"text": text})

    def click(self, element):
        self.call("POST", self.s("/element/%s/click" % element), {})

    def text(self, element):
        return self.call("GET", self.s("/element/%s/text" % element))

    def attribute(self, element, name):
        return self.call("GET", self.s("/element/%s/attribute/%s" % (element, name)))

    def css(self, element, prop):
        return self.call("GET", self.s("/element/%s/css/%s" % (element, prop)))

    def run(self, script):
        # WebDriver scripts are evaluated by DevTools, outside the page's CSP.
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": []})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.call("GET", self.s("/screenshot"))))

    def cookies(self):
        return self.call("GET", self.s("/cookie"))

    def browser_log(self):
        return self.call("POST", self.s("/se/log"), {"type": "browser"})

    def quit(self):
        if self.session:
            try:
                self.call("DELETE", self.s(""), timeout=30)
            except Exception:
                pass


def wait_for(cond, timeout=20):
    """Polls `cond` until it is true (a click's navigation completes asynchronously)."""
    end = time.time() + timeout
    while True:
        if cond():
            return True
        if time.time() > end:
            return False
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--artifacts", default="test-artifacts")
    a = ap.parse_args()
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        print("skipped: chromium and chromedriver are needed (scripts/install-deps.sh --with-browser)")
        return 77
    os.makedirs(a.artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix="srl-browser-")
    server = driver_proc = None
    wd = None
    try:
        # The demo server, with 127.0.0.1 trusted so X-Forwarded-For can name clients.
        server, base = start_demo_server(a.server, work, TOKEN, "--trusted-proxies", "127.0.0.1/32",
                                         "--live-refresh-ms", "400")

        # Traffic: one client over the login limit, a hostile user id over the items limit.
        login = [http("POST", base + "/api/login", {"X-Forwarded-For": "203.0.113.5"}, b"")[0] for _ in range(9)]
        check(login.count(429) == 4, "9 logins from one client: 5 allowed, 4 blocked (%s)" % login)
        items = [http("GET", base + "/api/items", {"X-Demo-User": HOSTILE})[0] for _ in range(103)]
        check(items.count(429) == 3, "103 item requests from one user: 3 blocked")
        http("GET", base + "/api/items", {"X-Forwarded-For": "198.51.100.7"})
        time.sleep(0.5)  # the async sink writes within its 200 ms batch delay
        status, csv = http("GET", base + "/ratelimit/dashboard/offenders.csv",
                           {"Authorization": "Bearer " + TOKEN})
        for _ in range(100):
            if "rule:login:ip:203.0.113.5,4" in csv:
                break
            time.sleep(0.1)
            status, csv = http("GET", base + "/ratelimit/dashboard/offenders.csv",
                               {"Authorization": "Bearer " + TOKEN})
        check(status == 200 and "rule:login:ip:203.0.113.5,4" in csv, "the events reached the database")

        # Health: anyone gets the status, staff the checks.
        status, body = http("GET", base + "/ratelimit/health")
        check(status == 200 and json.loads(body) == {"status": "ok"}, "anonymous health is 200 with no detail")
        status, body = http("GET", base + "/ratelimit/health", {"Authorization": "Bearer " + TOKEN})
        report = json.loads(body)
        check(status == 200 and [c["name"] for c in report["checks"]] == ["database", "migrations", "event_writer"]
              and all(c["ok"] for c in report["checks"]),
              "staff health lists the database, migrations and event writer checks (%s)" % body)

        # The browser.
        # A free port can be taken by a test beside this one before chromedriver binds
        # it: then the driver exits, and the next attempt takes another port.
        for _ in range(5):
            dport = free_port()
            driver_proc = subprocess.Popen([CHROMEDRIVER, "--port=%d" % dport, "--allowed-ips=127.0.0.1"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wd = WebDriver(dport)
            ready = False
            for _ in range(100):
                if driver_proc.poll() is not None:
                    break
                try:
                    wd.call("GET", "/status", timeout=5)
                    ready = driver_proc.poll() is None
                    break
                except Exception:
                    time.sleep(0.1)
            if ready:
                break
            stop(driver_proc, signal.SIGKILL)
        check(ready, "chromedriver answers on a free port")
        wd.start(os.path.join(work, "profile"))

        wd.go(base + "/ratelimit/dashboard/")
        src = wd.source()
        check("Forbidden" in src and "offenders" not in src, "an anonymous browser gets 403 Forbidden and no data")

        wd.go(base + "/ratelimit/signin")
        field = wd.find("input#token")
        check(len(field) == 1, "the sign-in form has a token field")
        wd.type(field[0], "wrong-token-xyz")
        wd.click(wd.find("button[type=submit]")[0])
        check(wait_for(lambda: "Forbidden" in wd.source()), "a wrong token gets 403")
        wd.go(base + "/ratelimit/signin")
        wd.type(wd.find("input#token")[0], TOKEN)
        wd.click(wd.find("button[type=submit]")[0])
        wait_for(lambda: wd.url().endswith("/ratelimit/dashboard/") and len(wd.find("table#offenders")) == 1)
        check(wd.url() == base + "/ratelimit/dashboard/", "signing in redirects to the dashboard")
        cookie_visible = wd.run("return document.cookie;")
        check(cookie_visible == "", "the staff cookie is HttpOnly (invisible to scripts)")
        session = [c for c in wd.cookies() if c.get("name") == "srl_staff"]
        check(len(session) == 1 and session[0]["value"] != TOKEN and TOKEN not in session[0]["value"]
              and len(session[0]["value"]) == 48 and session[0].get("httpOnly") is True
              and session[0].get("sameSite") == "Strict",
              "the cookie is a random session id, HttpOnly and SameSite=Strict, not the token (%s)"
              % {k: v for k, v in (session[0].items() if session else []) if k != "value"})
        session_id = session[0]["value"]

        check(wd.run("return document.title;") == "Rate limiting dashboard", "the dashboard title")
        rows = wd.find("table#offenders tbody tr")
        check(len(rows) >= 2, "the offenders table has rows (%d)" % len(rows))
        texts = [wd.text(r) for r in rows]
        check(any("rule:login:ip:203.0.113.5" in t and t.rstrip().endswith("4") for t in texts),
              "the blocked login client is listed with 4 blocked")
        check(any(HOSTILE in t for t in texts), "the hostile user id is shown as text")
        links = wd.find("table#offenders a")
        hrefs = [wd.attribute(l, "href") for l in links]
        check(all("/ratelimit/dashboard/offender.html?key=" in h for h in hrefs) and
              any("%3Cscript%3E" in h for h in hrefs), "offender links point to the encoded drill-down page")
        scripts = wd.run("return Array.from(document.scripts).map(function (s) { return s.src; });")
        check(scripts == [base + "/ratelimit/dashboard/live.js"], "the only script is the dashboard's live.js (%s)" % scripts)
        check(wd.run("return document.querySelectorAll('img').length;") == 0, "no injected image element")
        rules = [wd.text(r) for r in wd.find("table#rules tbody tr")]
        check(any(t.startswith("login") for t in rules) and any(t.startswith("items") for t in rules),
              "the rule hits table lists login and items")
        check(len(wd.find("table#summary-today")) == 1 and len(wd.find("table#summary-window")) == 1,
              "today and window summaries")
        check(len(wd.find("svg.chart")) == 1, "the traffic chart is an inline SVG")
        check(len(wd.find("svg.chart rect.blocked")) >= 1 and len(wd.find("svg.chart rect.allowed")) >= 1,
              "the chart has allowed and blocked bars")
        height = wd.run("return document.querySelector('svg.chart rect.blocked').getBBox().height;")
        check(height > 0, "blocked bars are drawn with a height (%s px)" % height)
        check(wd.css(wd.find("table#offenders")[0], "border-collapse") == "collapse",
              "the nonce'd stylesheet is applied under the CSP")
        selector = [wd.attribute(l, "href") for l in wd.find("nav a")]
        check(sum(1 for h in selector if "/dashboard/?days=" in h) == 4 and any("offenders.csv" in h for h in selector),
              "the window selector (1/7/30/90) and the CSV link")

        # The live refresh: live.js fetches timeline.json and redraws the chart.
        check(wait_for(lambda: int(wd.run("return +(document.getElementById('traffic')"
                                          ".getAttribute('data-refreshed') || 0);")) >= 2, timeout=30),
              "the chart refreshed itself twice")
        fetched = wd.run("return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
                         ".filter(function (n) { return n.indexOf('/ratelimit/dashboard/timeline.json?days=7') >= 0; })"
                         ".length;")
        check(fetched >= 2, "the page fetched timeline.json (%s times)" % fetched)
        check(len(wd.find("svg.chart rect.blocked")) >= 1 and len(wd.find("svg.chart rect.allowed")) >= 1,
              "the redrawn chart has allowed and blocked bars")
        check(wd.text(wd.find("#live-status")[0]).startswith("Chart updated"), "the live status says when")

        wd.click(wd.find("nav a[href$='?days=30']")[0])
        check(wait_for(lambda: wd.url().endswith("/ratelimit/dashboard/?days=30") and "Last 30 days" in wd.source()),
              "the window selector switches to 30 days")
        wd.go(base + "/ratelimit/dashboard/")
        wd.screenshot(os.path.join(a.artifacts, "dashboard.png"))
        print("screenshot: " + os.path.abspath(os.path.join(a.artifacts, "dashboard.png")))

        # The drill-down page, from the offenders table.
        link = [l for l in wd.find("table#offenders a") if "%3Cscript%3E" in wd.attribute(l, "href")]
        check(len(link) == 1, "the hostile offender has one link")
        wd.click(link[0])
        check(wait_for(lambda: "/ratelimit/dashboard/offender.html?key=" in wd.url() and
                       len(wd.find("table#recent-events")) == 1), "the link opens the offender page")
        check(wd.text(wd.find("#offender-key")[0]) == "rule:items:user:" + HOSTILE, "the hostile key is shown as text")
        totals = wd.text(wd.find("table#offender-totals")[0])
        check("Blocked 3" in totals and "Degraded 0" in totals, "the totals include blocked and degraded (%r)" % totals)
        outcomes = [wd.text(c) for c in wd.find("table#recent-events tbody td[class^='outcome-']")]
        check("blocked" in outcomes and "allowed" in outcomes, "recent events show their outcome")
        check(wd.run("return document.querySelectorAll('script').length;") == 0, "no script on the offender page")
        check(wd.run("return document.querySelectorAll('img').length;") == 0, "no injected image on the offender page")
        check(wd.css(wd.find("table#recent-events")[0], "border-collapse") == "collapse",
              "the offender page's stylesheet is applied under the CSP")
        wd.screenshot(os.path.join(a.artifacts, "offender.png"))
        wd.click(wd.find("a#json-link")[0])
        check(wait_for(lambda: "/ratelimit/dashboard/offender/?key=" in wd.url()), "the JSON link opens the JSON")
        body = wd.run("return document.body.innerText;")
        detail = json.loads(body)
        check(detail["key"] == "rule:items:user:" + HOSTILE and detail["blocked"] == 3, "the JSON drill-down in the browser")
        check(wd.run("return document.querySelectorAll('script').length;") == 0, "the JSON is not executed")

        # Signing out ends the session on the server, not only in this browser.
        wd.go(base + "/ratelimit/dashboard/")
        wd.click(wd.find("footer form button[type=submit]")[0])
        check(wait_for(lambda: wd.url() == base + "/ratelimit/signin"), "signing out returns to the sign-in form")
        check(not [c for c in wd.cookies() if c.get("name") == "srl_staff"], "the browser dropped the session cookie")
        status, _ = http("GET", base + "/ratelimit/dashboard/", {"Cookie": "srl_staff=" + session_id})
        check(status == 403, "the session's cookie replayed after sign-out is refused (%d)" % status)

        logs = wd.browser_log()
        bad = [e for e in logs if e.get("level") == "SEVERE" or "Content Security Policy" in e.get("message", "")]
        # The two deliberate 403s (anonymous, wrong token) are logged as failed loads.
        bad = [e for e in bad if "status of 403" not in e.get("message", "")]
        check(not bad, "no console errors or CSP violations: %s" % bad)
        return 0
    except Failure as e:
        print("FAIL " + str(e))
        return 1
    finally:
        if wd:
            wd.quit()
        stop(driver_proc)
        rc = stop(server, signal.SIGINT)
        if server is not None:
            print("demo server exit code %s" % rc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
