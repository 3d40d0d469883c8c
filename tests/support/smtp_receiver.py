#!/usr/bin/env python3
# A real SMTP server for the alert tests (Debian's python3-aiosmtpd), bound to
# 127.0.0.1 on a port the kernel picks. Each message is written to OUTDIR as
# msg-N.eml (the DATA bytes as received, dot-unstuffed) and msg-N.json (envelope).
# Usage: smtp_receiver.py OUTDIR [--tls CERT KEY] [--auth USER:PASSWORD]
# Writes the port to OUTDIR/port when ready; stops on SIGTERM.
import asyncio
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.outdir, "msg-%d" % self.count)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated": bool(getattr(session, "authenticated", False)),
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


def main():
    args = sys.argv[1:]
    outdir = args.pop(0)
    kwargs = {}
    while args:
        opt = args.pop(0)
        if opt == "--tls":
            cert, key = args.pop(0), args.pop(0)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            kwargs.update(tls_context=ctx, require_starttls=True)
        elif opt == "--auth":
            user, password = args.pop(0).split(":", 1)

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (isinstance(auth_data, LoginPassword)
                      and auth_data.login == user.encode()
                      and auth_data.password == password.encode())
                return AuthResult(success=ok)

            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)
        else:
            raise SystemExit("unknown option " + opt)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler(outdir)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="receiver.test", **kwargs), "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    with open(os.path.join(outdir, "port.tmp"), "w") as f:
        f.write(str(port))
    os.rename(os.path.join(outdir, "port.tmp"), os.path.join(outdir, "port"))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    main()
