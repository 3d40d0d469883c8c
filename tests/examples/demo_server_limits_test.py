#!/usr/bin/env python3
"""The demo server against clients that hold or exhaust it, each case a server of its own:

timeouts     with --read-timeout/--idle-timeout/--write-timeout 1: a slowloris client
             (a header byte every 0.2 s, never finished) gets a 408 and is closed at
             the read deadline; so is a connection that sends nothing; a kept-alive
             connection is closed after the idle timeout, not while it keeps asking;
             the connection of a client that sends requests but never reads is closed
             (reset) at the write timeout.
cap          with --max-connections 2: the third connection is not served until one of
             the first two ends, then at once.
descriptors  under RLIMIT_NOFILE 100 with idle connections holding every descriptor:
             the server's CPU time stays well under a fifth of the wall time (accept
             failing with EMFILE backs off instead of spinning), and once the clients
             leave it serves again.
threads      with --threads 2: connections on both I/O threads are served, and a silent
             one is cut off at the read deadline.

Starts each server on 127.0.0.1 (a free port, a fresh SQLite file) and stops it by
its own PID.

usage: demo_server_limits_test.py --server PATH --case timeouts|cap|descriptors|threads
Exit codes: 0 pass, 1 fail.
"""
import argparse
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from demo_process import Failure, check, start_demo_server, stop  # noqa: E402

TOKEN = "limits-test-staff-token-01"
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
ANSWER_BODY = b'{"dashboard":"/ratelimit/dashboard/"}'


def connect(port, timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_answer(sock):
    """One whole answer to REQUEST (or a refusal), as bytes; b"" when the server closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b": ")
        if name.lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def served(sock):
    sock.sendall(REQUEST)
    answer = read_answer(sock)
    return answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(ANSWER_BODY)


def seconds(t):
    return "never" if t is None else "%.2f" % t


def wait_closed(sock, limit):
    """Seconds until the server closes `sock` (reading off any bytes), or None after `limit` s."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while True:
            if not sock.recv(65536):
                break
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return None
    return time.monotonic() - t0


def open_descriptors(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def settled_descriptors(pid):
    """The server's descriptors once the count has not changed for 0.2 s (at most 5 s)."""
    last, since, t0 = open_descriptors(pid), time.monotonic(), time.monotonic()
    while time.monotonic() - since < 0.2 and time.monotonic() - t0 < 5:
        time.sleep(0.02)
        n = open_descriptors(pid)
        if n != last:
            last, since = n, time.monotonic()
    return last


def case_timeouts(server, work):
    proc, base = start_demo_server(server, work, TOKEN, "--read-timeout", "1", "--idle-timeout", "1",
                                   "--write-timeout", "1")
    port = int(base.rsplit(":", 1)[1])
    try:
        # A client that sends requests and never reads: the answers fill the buffers,
        # the server's write waits, and the connection is reset at the write deadline.
        # (Seen from the server: the client may not notice the reset until it sends.)
        before = settled_descriptors(proc.pid)
        s = connect(port, timeout=20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

        def flood():
            try:
                s.sendall(REQUEST * 400000)
            except OSError:
                pass

        sender = threading.Thread(target=flood, daemon=True)
        t0 = time.monotonic()
        sender.start()
        while open_descriptors(proc.pid) == before and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        held = open_descriptors(proc.pid)
        check(held > before, "a client that never reads holds a connection (%d descriptors, %d before)"
              % (held, before))
        while open_descriptors(proc.pid) > before and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        took = time.monotonic() - t0
        check(open_descriptors(proc.pid) <= before,
              "until the server closes it at the write deadline (after %.2f s, flooding included)" % took)
        try:
            s.shutdown(socket.SHUT_RDWR)  # ends the sender's sendall
        except OSError:
            pass  # already reset
        sender.join(5)
        s.close()

        # Slowloris: a header byte every 0.2 s, never finished.
        s = connect(port)
        t0 = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer = b""
        while time.monotonic() - t0 < 8:
            readable, _, _ = select.select([s], [], [], 0.2)
            if readable:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                answer += chunk
                continue
            try:
                s.sendall(b"a")
            except OSError:
                break
        took = time.monotonic() - t0
        check(0.9 <= took < 4, "a slowloris client is cut off at the 1 s read deadline (after %.2f s)" % took)
        check(answer.startswith(b"HTTP/1.1 408 ") and b"Connection: close\r\n" in answer,
              "and answered 408 with Connection: close")
        s.close()

        # A connection that never sends a byte: closed, nothing answered.
        s = connect(port)
        took = wait_closed(s, 8)
        check(took is not None and 0.9 <= took < 4,
              "a connection that sends nothing is closed at the read deadline (after %s s)" % seconds(took))
        s.close()

        # Kept alive: served while it asks within the idle timeout (longer in all than
        # the read timeout), closed once it stops asking.
        s = connect(port)
        answers = []
        for _ in range(4):
            answers.append(served(s))
            time.sleep(0.5)
        check(answers == [True] * 4, "a connection asking every 0.5 s is served for 2 s")
        took = wait_closed(s, 8)  # 0.5 s after the last answer
        check(took is not None and took + 0.5 < 4,
              "then closed at the 1 s idle deadline (after %s s idle)" % seconds(took and took + 0.5))
        s.close()

        check(served(connect(port)), "the server still serves")
    finally:
        stop(proc, signal.SIGKILL)


def case_cap(server, work):
    proc, base = start_demo_server(server, work, TOKEN, "--max-connections", "2")
    port = int(base.rsplit(":", 1)[1])
    try:
        first, second = connect(port), connect(port)
        check(served(first) and served(second), "two connections are served")
        third = connect(port)  # queued by the kernel, not accepted
        third.sendall(REQUEST)
        third.settimeout(0.5)
        try:
            early = third.recv(4096)
        except socket.timeout:
            early = None
        check(early is None, "a third is not served while two are open (--max-connections 2)")
        first.close()
        third.settimeout(5)
        t0 = time.monotonic()
        answer = read_answer(third)
        check(answer.startswith(b"HTTP/1.1 200 "), "once the first closes, the third is served (after %.2f s)"
              % (time.monotonic() - t0))
        check(served(second) and served(third), "and both open connections go on being served")
        second.close()
        third.close()
    finally:
        stop(proc, signal.SIGKILL)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def case_descriptors(server, work):
    limit = 100

    def lower_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    # A cap above the descriptor limit, so that accept runs out of descriptors (the
    # default cap, derived from the limit, would stop accepting before).
    proc, base = start_demo_server(server, work, TOKEN, "--max-connections", "10000", "--read-timeout", "60",
                                   preexec_fn=lower_limit)
    port = int(base.rsplit(":", 1)[1])
    clients = []
    try:
        for _ in range(limit + 50):  # the rest wait in the listen queue
            clients.append(connect(port))
        deadline = time.monotonic() + 10
        while open_descriptors(proc.pid) < limit and time.monotonic() < deadline:
            time.sleep(0.05)
        check(open_descriptors(proc.pid) >= limit, "idle connections hold all %d of the server's descriptors" % limit)
        wall0, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
        time.sleep(2)  # what is measured: the server's CPU time while accept fails
        share = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - wall0)
        check(share < 0.2, "out of descriptors, the server uses %.0f%% of a CPU (under 20%%: no busy loop)"
              % (share * 100))
        check(proc.poll() is None, "and keeps running")
        for c in clients:
            c.close()
        clients = []
        deadline = time.monotonic() + 10
        ok = False
        while not ok and time.monotonic() < deadline:
            try:
                ok = served(connect(port, timeout=5))
            except OSError:
                time.sleep(0.1)
        check(ok, "once the clients leave, the server serves again")
    finally:
        for c in clients:
            c.close()
        stop(proc, signal.SIGKILL)


def case_threads(server, work):
    proc, base = start_demo_server(server, work, TOKEN, "--threads", "2", "--read-timeout", "1")
    port = int(base.rsplit(":", 1)[1])
    try:
        conns = [connect(port) for _ in range(4)]  # dealt to both I/O threads in turn
        check(all(served(c) for c in conns) and all(served(c) for c in conns),
              "four connections on two I/O threads are served, twice each")
        silent = [connect(port) for _ in range(2)]
        took = [wait_closed(s, 8) for s in silent]
        check(all(t is not None and t < 4 for t in took),
              "silent connections on both threads are closed at the read deadline (%s)"
              % ", ".join(seconds(t) for t in took))
        for c in conns + silent:
            c.close()
    finally:
        stop(proc, signal.SIGKILL)


CASES = {"timeouts": case_timeouts, "cap": case_cap, "descriptors": case_descriptors, "threads": case_threads}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="srl-limits-")
    try:
        CASES[a.case](a.server, work)
        return 0
    except (Failure, OSError) as e:
        print("FAIL " + (str(e) or type(e).__name__))
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
