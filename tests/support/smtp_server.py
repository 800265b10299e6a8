"""A small SMTP server for mailrules' tests, on aiosmtpd.

Captures every accepted message into a Maildir, can answer RCPT with an error (a 4xx or 5xx
line, for every recipient or only for one, for the first N times or always), and can speak
STARTTLS or implicit TLS with a given certificate. Prints "PORT <n>" once it listens.
"""

import argparse
import asyncio
import mailbox
import ssl
import sys

from aiosmtpd.smtp import SMTP


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
    args = parser.parse_args()

    handler = Handler(args.maildir, args.reject, args.reject_only, args.reject_times)
    loop = asyncio.get_running_loop()
    starttls = tls_context(*args.starttls) if args.starttls else None
    implicit = tls_context(*args.implicit) if args.implicit else None

    def factory():
        return SMTP(
            handler,
            hostname="smtp.test",
            tls_context=starttls,
            require_starttls=starttls is not None,
        )

    server = await loop.create_server(factory, host="127.0.0.1", port=args.port, ssl=implicit)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    # The parent closes our stdin when it is done with us (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
