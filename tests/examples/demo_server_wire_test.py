#!/usr/bin/env python3
"""The demo server on the wire: what its own request reader and response writer do.

The demo server feeds Beast's parser by hand and writes its small answers straight
to the socket (limit_result::append_fields), so this checks the bytes over a raw
loopback socket: status lines and fields of allowed, limited and unlimited answers,
Content-Length against the body, persistence for HTTP/1.0 and 1.1, pipelined
requests and bodies split across reads, the 429, connections that end early, and
requests that are malformed (400) or over the header (431) or body (413) limit.
Starts the server on 127.0.0.1 (a free port, a fresh SQLite file) and stops it by
its own PID.

usage: demo_server_wire_test.py --server PATH
Exit codes: 0 pass, 1 fail.
"""
import argparse
import os
import re
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

TOKEN = "wire-test-staff-token-0001"


class Conn:
    """One client connection that reads whole responses (Content-Length framed)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.pending = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.pending += chunk

    def response(self):
        """(status, reason, version, [(name, value)], body)"""
        while b"\r\n\r\n" not in self.pending:
            self._fill()
        head, self.pending = self.pending.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = re.match(r"^(HTTP/1\.[01]) (\d{3}) (.*)$", lines[0]).groups()
        fields = []
        for line in lines[1:]:
            name, sep, value = line.partition(": ")
            if not sep:
                raise Failure("malformed field line %r" % line)
            fields.append((name, value))
        length = [int(v) for n, v in fields if n.lower() == "content-length"]
        size = length[0] if length else 0
        while len(self.pending) < size:
            self._fill()
        body, self.pending = self.pending[:size], self.pending[size:]
        return int(status), reason, version, fields, body

    def closed(self):
        """True when the server has closed the connection (nothing more to read)."""
        if self.pending:
            return False
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def field(fields, name):
    values = [v for n, v in fields if n.lower() == name.lower()]
    return values[0] if len(values) == 1 else None


def run(port):
    # An allowed, limited answer: exact framing and every rate-limit field.
    c = Conn(port)
    c.send(b"GET /api/items?page=2 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, reason, version, fields, body = c.response()
    check((status, reason, version) == (200, "OK", "HTTP/1.1"), "GET /api/items: HTTP/1.1 200 OK")
    check(body == b'{"items":[]}' and field(fields, "Content-Length") == str(len(body)),
          "the body and its Content-Length agree")
    check(field(fields, "Content-Type") == "application/json", "Content-Type is application/json")
    check(field(fields, "RateLimit-Policy") == '"items";q=100;w=60', "RateLimit-Policy names the items rule")
    check(re.fullmatch(r'"items";r=99;t=\d+', field(fields, "RateLimit") or ""), "RateLimit: 99 left")
    check(field(fields, "X-RateLimit-Limit") == "100" and field(fields, "X-RateLimit-Remaining") == "99",
          "X-RateLimit-Limit and -Remaining")
    reset = int(field(fields, "X-RateLimit-Reset") or 0)
    check(abs(reset - time.time()) <= 61, "X-RateLimit-Reset is a Unix time within the window")
    check(field(fields, "Connection") is None, "a persistent HTTP/1.1 answer sends no Connection field")
    check(len(fields) == 7, "exactly seven fields (%s)" % [n for n, _ in fields])

    # Persistence: the same connection serves the next request, a pipelined pair and a
    # POST whose body arrives in two writes, in order.
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
    time.sleep(0.1)
    c.send(b"56789GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
    answers = [c.response() for _ in range(3)]
    check([a[0] for a in answers] == [200, 200, 404], "pipelined requests answered in order: 200 200 404")
    check(answers[0][4] == b'{"dashboard":"/ratelimit/dashboard/"}', "an unlimited route has its body")
    check(field(answers[0][3], "RateLimit") is None, "an unlimited route carries no rate-limit fields")
    check(answers[1][4] == b'{"ok":true}' and field(answers[1][3], "RateLimit-Policy") == '"login";q=5;w=60',
          "the POST with a split body reached the login route")
    check(answers[2][4] == b'{"error":"not found"}', "404 has its JSON body")

    # Connection: close on HTTP/1.1 is honoured and announced.
    c.send(b"GET /api/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, _, _, fields, _ = c.response()
    check(status == 200 and field(fields, "Connection") == "close", "Connection: close is echoed")
    check(c.closed(), "and the server closes the connection")
    c.close()

    # HTTP/1.0: closed by default, kept with keep-alive.
    c = Conn(port)
    c.send(b"GET /api/items HTTP/1.0\r\n\r\n")
    status, _, version, fields, _ = c.response()
    check(status == 200 and version == "HTTP/1.0" and field(fields, "Connection") is None,
          "HTTP/1.0 is answered in HTTP/1.0")
    check(c.closed(), "an HTTP/1.0 connection without keep-alive is closed")
    c.close()
    c = Conn(port)
    c.send(b"GET /favicon.ico HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, reason, _, fields, body = c.response()
    check((status, reason) == (204, "No Content") and body == b"" and field(fields, "Content-Length") is None,
          "204 has no body and no Content-Length")
    check(field(fields, "Connection") == "keep-alive", "HTTP/1.0 keep-alive is announced")
    c.send(b"GET / HTTP/1.0\r\n\r\n")
    check(c.response()[0] == 200, "and the connection serves the next request")
    c.close()

    # The login rule: five per minute per IP, then the middleware's own 429.
    c = Conn(port)
    statuses = []
    for _ in range(6):
        c.send(b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        statuses.append(c.response())
    # One login was spent above; four more are allowed, then 429.
    check([s[0] for s in statuses] == [200, 200, 200, 200, 429, 429], "the sixth and later logins get 429")
    status, _, _, fields, body = statuses[-1]
    check(field(fields, "Retry-After") is not None and int(field(fields, "Retry-After")) >= 1,
          "the 429 has Retry-After")
    check(field(fields, "RateLimit") is not None and field(fields, "X-RateLimit-Remaining") == "0",
          "the 429 has the rate-limit fields")
    check(field(fields, "Content-Length") == str(len(body)) and len(body) > 0, "the 429 body is framed")
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.response()[0] == 200, "the connection persists after a 429")
    c.close()

    # The dashboard still answers through Beast's serializer.
    c = Conn(port)
    c.send(b"GET /ratelimit/dashboard/ HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.response()[0] == 403, "the dashboard refuses an anonymous request")
    c.send(("GET /ratelimit/dashboard/offender/?key=rule:login:ip:127.0.0.1 HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer %s\r\n\r\n" % TOKEN).encode())
    status, _, _, fields, body = c.response()
    check(status == 200 and body.startswith(b"{") and field(fields, "Content-Length") == str(len(body)),
          "and serves staff the JSON drill-down on the same connection")
    c.close()

    # A client that sends many requests before reading any answer: the server's
    # send buffer fills, so answers go out through the asynchronous write too.
    count = 100000
    c = Conn(port)
    sender = threading.Thread(target=lambda: c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * count))
    sender.start()
    time.sleep(0.5)  # the server answers into a full buffer meanwhile
    bodies, answered = set(), 0
    for _ in range(count):
        status, _, _, _, body = c.response()
        if status != 200:
            break
        bodies.add(body)
        answered += 1
    sender.join()
    check(answered == count and bodies == {b'{"dashboard":"/ratelimit/dashboard/"}'},
          "%d pipelined requests read late all get their whole answer" % count)
    c.close()

    # Bad input: a malformed request or one over a limit is answered (400, 431, 413)
    # and the connection closed; a request cut off by the client's close is not
    # answered. The server lives on.
    for what, data, expect in [
            ("garbage", b"GARBAGE\r\n\r\n", 400),
            ("a request cut off in its header", b"GET /api/items HTTP/1.1\r\nHost", None),
            ("a body shorter than its Content-Length",
             b"POST /api/login HTTP/1.1\r\nContent-Length: 9\r\n\r\nab", None),
            ("a header over 8 KiB", b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
            ("a body over 64 KiB (announced)", b"POST /api/login HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", 413),
            ("a body over 64 KiB (sent)",
             b"POST /api/login HTTP/1.1\r\nContent-Length: 70000\r\n\r\n" + b"a" * 70000, 413)]:
        c = Conn(port)
        try:
            c.send(data)
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may hang up before everything is sent
        if expect is None:
            try:
                got = c.sock.recv(100)
            except ConnectionResetError:
                got = b""
            check(got == b"", "%s: the connection is closed without an answer" % what)
        else:
            status, _, _, fields, body = c.response()
            check(status == expect and field(fields, "Connection") == "close" and body.startswith(b'{"error":'),
                  "%s: answered %d with Connection: close and a JSON body" % (what, expect))
            check(c.closed(), "%s: and the connection is closed" % what)
        c.close()
    c = Conn(port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(c.response()[0] == 200, "the server still answers after bad input")
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="srl-wire-")
    server = None
    try:
        server, base = start_demo_server(a.server, work, TOKEN)
        run(int(base.rsplit(":", 1)[1]))
        check(stop(server, signal.SIGINT) == 0, "the server stops cleanly on SIGINT")
        return 0
    except (Failure, EOFError, OSError) as e:
        print("FAIL " + (str(e) or type(e).__name__))
        return 1
    finally:
        stop(server, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
