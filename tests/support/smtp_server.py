"""A small SMTP server for mailrules' tests, on aiosmtpd.

Captures every accepted message into a Maildir, can answer RCPT with an error (a 4xx or 5xx
line, for every recipient or only for one, for the first N times or always), and can speak
STARTTLS or implicit TLS with a given certificate, and can require AUTH XOAUTH2 with access
tokens checked at an OAuth2 introspection endpoint. Prints "PORT <n>" once it listens.
"""

import argparse
import asyncio
import base64
import json
import logging
import mailbox
import ssl
import sys
import urllib.parse
import urllib.request
import warnings

from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    def __init__(self, maildir, reject, reject_only, reject_times):
        self.maildir = mailbox.Maildir(maildir, create=True)
        self.reject = reject
        self.reject_only = reject_only.lower() if reject_only else None
        self.reject_times = reject_times

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject_times != 0:
            if self.reject_only is None or address.lower() == self.reject_only:
                if self.reject_times > 0:
                    self.reject_times -= 1
                return self.reject
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        # The envelope recipients, so that tests can see who really got the message.
        rcpt = ", ".join(envelope.rcpt_tos).encode("ascii", "replace")
        self.maildir.add(b"X-Test-Envelope-To: " + rcpt + b"\r\n" + content)
        return "250 Message accepted for delivery"


def token_is_active(introspection_url, user, token):
    body = urllib.parse.urlencode({"token": token}).encode()
    with urllib.request.urlopen(introspection_url, data=body, timeout=10) as answer:
        document = json.load(answer)
    return document.get("active") is True and document.get("username") == user


class XOAuth2Handler(Handler):
    """Offers AUTH XOAUTH2 (user=U^Aauth=Bearer T^A^A), the token checked by introspection."""

    introspection_url = ""

    async def auth_XOAUTH2(self, server, args):
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            fields = base64.b64decode(args[1]).decode().split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
        except Exception:
            return AuthResult(success=False, handled=False)
        loop = asyncio.get_running_loop()
        active = await loop.run_in_executor(
            None, token_is_active, self.introspection_url, user, token
        )
        # handled=False: aiosmtpd answers a refusal with its 535 itself.
        return AuthResult(success=active, handled=False)


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--reject", help='an SMTP reply line, e.g. "550 5.1.1 No such user"')
    parser.add_argument("--reject-only", help="reject only this recipient")
    parser.add_argument("--reject-times", type=int, default=-1, help="-1: always")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--implicit", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--xoauth2-introspect", metavar="URL",
                        help="require AUTH XOAUTH2, checking tokens at this URL")
    args = parser.parse_args()

    handler_class = Handler
    if args.xoauth2_introspect:
        # AUTH without TLS is what these loopback tests want: no warning about it.
        warnings.simplefilter("ignore")
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        handler_class = XOAuth2Handler
        XOAuth2Handler.introspection_url = args.xoauth2_introspect
    handler = handler_class(args.maildir, args.reject, args.reject_only, args.reject_times)
    loop = asyncio.get_running_loop()
    starttls = tls_context(*args.starttls) if args.starttls else None
    implicit = tls_context(*args.implicit) if args.implicit else None

    def factory():
        return SMTP(
            handler,
            hostname="smtp.test",
            tls_context=starttls,
            require_starttls=starttls is not None,
            # Loopback only: the XOAUTH2 tests run without TLS.
            auth_required=bool(args.xoauth2_introspect),
            auth_require_tls=not args.xoauth2_introspect,
        )

    server = await loop.create_server(factory, host="127.0.0.1", port=args.port, ssl=implicit)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    # The parent closes our stdin when it is done with us (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
