"""A real SMTP server for the email tests (aiosmtpd, Debian's python3-aiosmtpd).

Run with Debian's interpreter:
    /usr/bin/python3 test/support/smtp_sink.py --port P --dir D
        [--cert CERT --key KEY]   offer STARTTLS with this certificate
        [--implicit-tls]          speak TLS from the first byte (SMTPS)
        [--auth USER:PASS]        require AUTH (PLAIN/LOGIN, over TLS only)
        [--replies 451,250,drop,550]

Each message the server ends with 250 (or "drop") is stored in D as
msg-N.eml (the bytes received, dot-unstuffed) and msg-N.json (mail_from,
rcpt_tos, tls, auth, received_at, and Python's email package's reading of
the message as an independent oracle: decoded headers, and every MIME part
in depth-first order with its type, filename and decoded bytes), written to a temporary name first and then renamed, so
a reader never sees half a file. --replies scripts the answers to successive
ends of data across all connections: a code (250, 451, 550, ...) or "drop"
(store the message, then close the connection without a reply, the case
where the client cannot know whether it was delivered) or "hang" (store
it, then never answer: the client's deadline passes); when the list is
exhausted every message gets 250. D/events.log gets one line per end of
data: "N REPLY". D/ready appears once the server listens. A recipient whose
local part starts with "reject" is refused with 550, "tempfail" with 450.
"""

import argparse
import asyncio
import base64
import email
import email.policy
import json
import os
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers = [[k, str(v)] for k, v in msg.items()]
    parts = []
    for part in msg.walk():
        entry = {"type": part.get_content_type(),
                 "filename": part.get_filename(),
                 "disposition": part.get_content_disposition(),
                 "charset": part.get_content_charset(),
                 "encoding": part.get("Content-Transfer-Encoding")}
        if not part.is_multipart():
            entry["content_b64"] = base64.b64encode(
                part.get_payload(decode=True) or b"").decode()
        parts.append(entry)
    return {"headers": headers, "parts": parts}


class Sink:
    def __init__(self, directory, replies):
        self.dir = directory
        self.replies = replies
        self.count = 0

    def _write(self, name, data):
        tmp = os.path.join(self.dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.dir, name))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return f"550 5.1.1 <{address}>: no such user (sink)"
        if address.startswith("tempfail"):
            return f"450 4.2.1 <{address}>: mailbox busy (sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = self.count
        self.count += 1
        reply = self.replies[n] if n < len(self.replies) else "250"
        with open(os.path.join(self.dir, "events.log"), "a") as log:
            log.write(f"{n} {reply}\n")
        if reply in ("250", "drop", "hang"):
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "tls": (session.ssl is not None or
                        server.transport.get_extra_info("ssl_object") is not None),
                "auth": (session.auth_data.login.decode()
                         if isinstance(session.auth_data, LoginPassword) else None),
            }
            raw = envelope.original_content or envelope.content
            meta["received_at"] = time.time()
            meta.update(parse(raw))
            self._write(f"msg-{n}.eml", raw)
            self._write(f"msg-{n}.json", json.dumps(meta).encode())
        if reply == "hang":
            await asyncio.sleep(3600)
        if reply == "drop":
            server.transport.abort()
            return "250 never sent"
        if reply == "250":
            return f"250 2.0.0 Ok: queued as sink-{n}"
        if reply.startswith("4"):
            return f"{reply} 4.3.0 Try again later (sink)"
        return f"{reply} 5.7.1 Message rejected (sink)"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--replies", default="")
    a = p.parse_args()

    os.makedirs(a.dir, exist_ok=True)
    sink = Sink(a.dir, [r for r in a.replies.split(",") if r])
    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and a.auth == (
            auth_data.login.decode() + ":" + auth_data.password.decode())
        return AuthResult(success=ok, auth_data=auth_data)

    def factory():
        kwargs = {}
        if a.auth:
            kwargs = dict(authenticator=authenticator, auth_required=True)
        return SMTP(sink, hostname="sink.test", ident="jobs test sink",
                    tls_context=None if a.implicit_tls else context,
                    data_size_limit=64 << 20, **kwargs)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, host="127.0.0.1", port=a.port,
        ssl=context if a.implicit_tls else None))
    with open(os.path.join(a.dir, "ready"), "w") as f:
        f.write(str(os.getpid()))
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
