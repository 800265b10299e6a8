#!/usr/bin/env python3
"""Webhook delivery throughput: N messages each queue one webhook; one `mailrules outbox send`
delivers them to a local receiver that takes DELAY seconds to answer each request (a tracker's
API is rarely faster than tens of milliseconds). Prints deliveries per second and checks that
every delivery arrived exactly once, each with its own Idempotency-Key and a valid signature.

    python3 bench/webhooks.py --binary target/release/mailrules [--messages 400] [--delay 0.05]

Only loopback traffic; the standard library only.
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import subprocess
import tempfile
import threading
import time

SECRET = b"bench-secret"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/mailrules")
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--delay", type=float, default=0.05)
    args = ap.parse_args()

    seen = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(args.delay)
            good = hmac.compare_digest(
                "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
                self.headers.get("X-Mailrules-Signature", ""),
            )
            with lock:
                seen.append((self.headers["Idempotency-Key"], good))
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    with tempfile.TemporaryDirectory() as work:
        os.makedirs(f"{work}/rules")
        os.makedirs(f"{work}/mail")
        with open(f"{work}/mailrules.toml", "w") as f:
            f.write(
                f'store = "s.db"\nrules = "rules"\n[[webhook]]\nname = "tracker"\n'
                f'url = "http://127.0.0.1:{port}/issues"\nsecret_env = "BENCH_SECRET"\n'
            )
        with open(f"{work}/rules/push.toml", "w") as f:
            f.write(
                '[[rule]]\nname = "push"\n[[rule.do]]\naction = "webhook"\nto = "tracker"\n'
                'body = { title = "{subject}", from = "{from}" }\n'
            )
        for n in range(args.messages):
            with open(f"{work}/mail/{n:05}.eml", "w") as f:
                f.write(
                    f"From: c{n}@client.example\r\nSubject: Order {n}\r\n"
                    f"Message-ID: <b{n}@client.example>\r\n\r\nbody {n}\r\n"
                )
        env = dict(os.environ, BENCH_SECRET=SECRET.decode(), MAILRULES_LOG="warn")
        run = lambda *a: subprocess.run(
            [args.binary, "--config", f"{work}/mailrules.toml", *a],
            env=env, check=True, capture_output=True, text=True,
        )
        run("ingest", f"{work}/mail")
        start = time.monotonic()
        run("outbox", "send")
        took = time.monotonic() - start
        rows = json.loads(run("outbox", "--json").stdout)

    keys = [k for k, _ in seen]
    assert len(seen) == args.messages, f"{len(seen)} requests for {args.messages} deliveries"
    assert len(set(keys)) == len(keys), "a key arrived twice"
    assert all(good for _, good in seen), "a signature did not verify"
    assert all(r["status"] == "sent" for r in rows)
    serial = f" (one at a time: at most {1 / args.delay:.0f}/s)" if args.delay > 0 else ""
    print(
        f"{args.messages} deliveries, receiver answering in {args.delay * 1000:.0f} ms: "
        f"{took:.2f} s, {args.messages / took:.0f} deliveries/s{serial}"
    )


if __name__ == "__main__":
    main()
