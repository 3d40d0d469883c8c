"""What the tests that drive examples/demo_server share: the ok/FAIL reporting, and
starting the server on 127.0.0.1 (a free port it picks itself, a fresh SQLite file)
and stopping it by its own PID."""
import os
import re
import signal
import subprocess
import time


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok   " + what)


def start_demo_server(server, work, token, *extra, preexec_fn=None, name="server"):
    """Starts `server` with its events in `work`/events.db; returns (process, base URL
    without a trailing slash). Its output goes to `work`/<name>.log; `preexec_fn` runs
    in the child before the server (e.g. to lower a resource limit). Raises Failure,
    with the server's output, when it does not report that it listens."""
    log = open(os.path.join(work, name + ".log"), "w+")
    proc = subprocess.Popen([server, "--port", "0", "--address", "127.0.0.1", "--database",
                             "sqlite:///" + work + "/events.db", "--migrate", "--staff-token", token, *extra],
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
    base = None
    for _ in range(300):
        log.seek(0)
        m = re.search(r"^demo_server: listening on (http://127\.0\.0\.1:\d+)/", log.read(), re.M)
        if m or proc.poll() is not None:
            base = m.group(1) if m else None
            break
        time.sleep(0.1)
    log.seek(0)
    if base is None:
        stop(proc)
    check(base is not None, "demo server started: " + log.read().strip().replace("\n", " | "))
    return proc, base


def stop(proc, sig=signal.SIGTERM, timeout=30):
    """Sends `sig` to `proc` and waits for it (SIGKILL after `timeout` s); its exit code."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    os.kill(proc.pid, sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()
