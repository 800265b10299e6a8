#!/usr/bin/env python3
"""Server time of the web's pages in a big store: the queue, its views and a long task.

Generates TASKS one-mail tasks plus one task with FOLLOW_UPS follow-ups (an mbox), ingests
them into a fresh store with the shipped rules, adds a user, starts `mailrules serve` on a
free loopback port, logs in, and requests each page REQUESTS times over one kept-alive
connection. Prints one Markdown table: median, 99th percentile and maximum in milliseconds.

    web_latency.py --binary target/release/mailrules [--tasks 100000] [--follow-ups 500]
                   [--requests 200] [--shipped rules] [--work DIR]

Only loopback traffic. The figures are the client's (request sent to answer read), which
includes the loopback round trip; nothing is asserted.
"""

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

PASSWORD = "bench-password-1"
USER = "anna@acme.example"
PAGES = [
    "/tasks",
    "/tasks?open=1",
    "/tasks?view=waiting-us",
    "/tasks?view=waiting-customer",
    "/tasks/1",
    "/api/version",
    "/api/tasks",
]


def write_mbox(path: str, tasks: int, follow_ups: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(tasks):
            f.write(f"From client{i}@customer.example Tue Dec  1 10:00:00 2026\n"
                    f"From: Client {i} <client{i}@customer.example>\nTo: support@acme.example\n"
                    f"Subject: Question number {i}\nMessage-ID: <q{i}@customer.example>\n"
                    f"Date: Tue, 1 Dec 2026 10:00:00 +0000\n\nHello, this is question {i}.\n\n")
        for j in range(follow_ups):
            f.write("From client0@customer.example Tue Dec  1 11:00:00 2026\n"
                    "From: Client 0 <client0@customer.example>\nTo: support@acme.example\n"
                    f"Subject: Re: Question number 0\nMessage-ID: <r{j}@customer.example>\n"
                    "In-Reply-To: <q0@customer.example>\nReferences: <q0@customer.example>\n"
                    f"Date: Tue, 1 Dec 2026 11:00:00 +0000\n\nFollow-up {j}.\n\n")


def request(port: int, method: str, path: str, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body, headers or {})
    answer = connection.getresponse()
    return answer, answer.read()


def log_in(port: int) -> str:
    answer, page = request(port, "GET", "/login")
    login_cookie = answer.getheader("set-cookie").split(";")[0]
    token = re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()
    form = urllib.parse.urlencode({"csrf": token, "email": USER, "password": PASSWORD,
                                   "next": "/tasks"})
    answer, _ = request(port, "POST", "/login", form,
                        {"Cookie": login_cookie,
                         "Content-Type": "application/x-www-form-urlencoded"})
    if answer.status != 303:
        sys.exit(f"login failed: {answer.status}")
    return answer.getheader("set-cookie").split(";")[0]


def measure(port: int, session: str, path: str, count: int) -> list:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", path, headers={"Cookie": session})
        answer = connection.getresponse()
        answer.read()
        times.append(time.perf_counter() - started)
        if answer.status != 200:
            sys.exit(f"GET {path}: {answer.status}")
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--follow-ups", type=int, default=500)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--shipped", default="rules")
    parser.add_argument("--work")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="mailrules-web-")
    config = os.path.join(work, "mailrules.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f'store = "mailrules.db"\nrules = "{os.path.abspath(args.shipped)}"\n'
                '[staff]\ndomains = ["acme.example"]\n')
    mbox = os.path.join(work, "big.mbox")
    write_mbox(mbox, args.tasks, args.follow_ups)
    binary = os.path.abspath(args.binary)
    base = [binary, "--config", config]
    subprocess.run(base + ["ingest", mbox], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(base + ["user", "add", USER, "--role", "agent"], check=True,
                   input=PASSWORD + "\n", text=True, stdout=subprocess.DEVNULL)
    quiet = dict(os.environ, MAILRULES_LOG="warn")
    server = subprocess.Popen(base + ["serve", "--listen", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, text=True, env=quiet)
    try:
        line = server.stdout.readline().strip()
        port = int(line.rsplit(":", 1)[1])
        session = log_in(port)
        print(f"{args.tasks:,} tasks, one with {args.follow_ups} follow-ups; "
              f"{args.requests} requests per page\n")
        print("| page | median ms | p99 ms | max ms |\n|---|---|---|---|")
        for path in PAGES:
            times = measure(port, session, path, args.requests)
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"| `{path}` | {times[len(times) // 2] * 1000:.1f} | {p99 * 1000:.1f} "
                  f"| {times[-1] * 1000:.1f} |")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
