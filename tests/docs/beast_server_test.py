#!/usr/bin/env python3
"""Runs examples/beast_server (the README's Beast integration) on a free port and
checks what the README promises: five POST /login answered 200 with RateLimit fields,
then a 429 with Retry-After. Usage: beast_server_test.py <beast_server binary>"""
import http.client
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ports import free_port  # noqa: E402


def post(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/login", body="")
    r = c.getresponse()
    r.read()
    c.close()
    return r.status, dict(r.getheaders())


def main():
    port = free_port()
    server = subprocess.Popen([sys.argv[1], str(port)])
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    print("the server did not start")
                    return 1
                time.sleep(0.1)
        # The probe connection above sent no request; the server skips it.
        statuses = []
        for i in range(6):
            status, headers = post(port)
            statuses.append(status)
            if "RateLimit" not in headers:
                print(f"request {i + 1}: no RateLimit field: {headers}")
                return 1
        print("statuses:", statuses)
        if statuses != [200] * 5 + [429]:
            return 1
        if int(headers.get("Retry-After", "0")) < 1:
            print("the 429 has no Retry-After >= 1")
            return 1
        return 0
    finally:
        server.kill()  # the process this test started
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
