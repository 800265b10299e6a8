#!/usr/bin/env python3
"""The web's speed (issue 15): how long `mailrules serve` takes to answer the queue page with
100,000 tasks, its views (mine, waiting for us, waiting for the customer, overdue: the last two
empty, so the worst case), a search, the JSON API and the page of a task with 500 comments
(median and 99th percentile over many requests), and what 50 browsers polling the queue cost
an ingest running at the same time.

Everything is seeded through the binary, as mail would: generated .eml files in mbox files
are ingested with `mailrules ingest` (100,000 new requests; 500 customer replies threaded to
one task by its [#N] tag), and the account is made with `mailrules user add`. Timings are
taken by the client over one kept-alive loopback connection per client, from sending the
request to having read the whole answer: the server's time plus a loopback round trip and
Python's reading of the body (an upper bound on the server's own time).

The polling clients do what the queue page's script does (src/web/assets/app.js): ask
/api/version every half second (--poll) and fetch the queue's rows again (--refetch,
/tasks/rows; give /tasks to measure a build from before the rows fragment) whenever it
changed. The ingest is `mailrules ingest` of 20,000 more messages into the served store,
timed with and without the 50 clients, alternating, median of the runs.
Python 3 standard library only.

    web.py --binary target/release/mailrules [--tasks 100000] [--comments 500]
           [--requests 1000] [--clients 50] [--poll 0.5] [--refetch /tasks/rows]
           [--ingest 20000] [--runs 3] [--work DIR]
"""

import argparse
import email.utils
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

EMAIL = "bench@acme.example"
PASSWORD = "bench password 1"

RULES = """
[[status]]
name = "Новая"
initial = true
[[status]]
name = "В работе"
[[status]]
name = "Завершенная"
closed = true

[[rule]]
name = "new-request"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
"""


def message(n: int, subject: str, extra: str = "") -> bytes:
    date = email.utils.formatdate(1_780_000_000 + n, usegmt=True)
    text = (
        f"From: Клиент {n % 997} <client{n % 997}@client.example>\n"
        f"To: support@acme.example\nSubject: {subject}\nDate: {date}\n"
        f"Message-ID: <bench-{n}@client.example>\n{extra}MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"Здравствуйте! Это сообщение номер {n}.\nНе работает принтер в кабинете {n % 300}.\n"
        "С уважением,\nклиент\n"
    )
    return text.encode()


def write_mbox(path: str, messages) -> None:
    with open(path, "wb") as f:
        for raw in messages:
            f.write(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n")
            for line in raw.split(b"\n"):
                if line.startswith(b"From "):
                    line = b">" + line
                f.write(line + b"\n")
            f.write(b"\n")


def mailrules(binary: str, config: str, args, stdin: bytes = b"") -> str:
    env = dict(os.environ, MAILRULES_LOG="warn")
    env.pop("MAILRULES_CONFIG", None)
    out = subprocess.run([binary, "--config", config] + args, input=stdin, env=env,
                         stdout=subprocess.PIPE, check=True)
    return out.stdout.decode()


def ingest(binary: str, config: str, mbox: str) -> float:
    start = time.perf_counter()
    mailrules(binary, config, ["ingest", mbox, "--json"])
    return time.perf_counter() - start


class Server:
    """`mailrules serve` on a free loopback port."""

    def __init__(self, binary: str, config: str):
        env = dict(os.environ, MAILRULES_LOG="warn")
        self.proc = subprocess.Popen([binary, "--config", config, "serve", "--listen",
                                      "127.0.0.1:0"], stdout=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline().decode().strip()
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            sys.exit(f"mailrules serve did not start (said {line!r})")
        self.port = int(m.group(1))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far, from /proc."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def log_in(port: int) -> str:
    """A session cookie for EMAIL, through the login form as a browser gets it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    answer = conn.getresponse()
    page = answer.read().decode()
    cookies = [c.split(";")[0] for c in answer.headers.get_all("Set-Cookie") or []]
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD, "csrf": token,
                                   "next": "/tasks"})
    conn.request("POST", "/login", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(cookies)})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 303:
        sys.exit(f"login failed: {answer.status}")
    for c in answer.headers.get_all("Set-Cookie") or []:
        pair = c.split(";")[0]
        if pair.split("=", 1)[1]:
            return pair
    sys.exit("login gave no session cookie")


def timed_gets(port: int, cookie: str, path: str, count: int):
    """`count` GETs of `path` over one kept-alive connection: seconds each, and the size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    size = 0
    for _ in range(count):
        start = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        answer = conn.getresponse()
        body = answer.read()
        times.append(time.perf_counter() - start)
        if answer.status != 200:
            sys.exit(f"GET {path}: {answer.status}")
        size = len(body)
    conn.close()
    return times, size


def percentile(values, p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def poller(port: int, cookie: str, stop: threading.Event, counts: list, every: float,
           refetch: str):
    """One browser with the queue open: /api/version every `every` seconds, `refetch` (the
    queue's rows) when it changed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    version = None
    while not stop.is_set():
        tick = time.monotonic()
        try:
            conn.request("GET", "/api/version", headers={"Cookie": cookie})
            answer = conn.getresponse()
            now = answer.read()
            counts[0] += 1
            if now != version:
                version = now
                conn.request("GET", refetch, headers={"Cookie": cookie})
                conn.getresponse().read()
                counts[1] += 1
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        stop.wait(max(0.0, every - (time.monotonic() - tick)))
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--comments", type=int, default=500)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--poll", type=float, default=0.5,
                    help="seconds between a client's polls (app.js: 500 ms)")
    ap.add_argument("--refetch", default="/tasks/rows",
                    help="what a client fetches when the version moved (app.js: /tasks/rows)")
    ap.add_argument("--ingest", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = args.work or tempfile.mkdtemp(prefix="mailrules-web-bench-")
    os.makedirs(os.path.join(work, "rules"), exist_ok=True)
    with open(os.path.join(work, "rules", "10-bench.toml"), "w") as f:
        f.write(RULES)
    config = os.path.join(work, "mailrules.toml")
    with open(config, "w") as f:
        f.write('store = "store.db"\nrules = "rules"\nunmatched = "thread"\n\n'
                '[staff]\ndomains = ["acme.example"]\n')

    t0 = time.perf_counter()
    tasks_mbox = os.path.join(work, "tasks.mbox")
    write_mbox(tasks_mbox, (message(n, f"Заявка {n}: не работает принтер")
                            for n in range(1, args.tasks + 1)))
    seconds = ingest(binary, config, tasks_mbox)
    print(f"seeded {args.tasks} tasks in {seconds:.1f} s", file=sys.stderr)
    comments_mbox = os.path.join(work, "comments.mbox")
    write_mbox(comments_mbox, (message(args.tasks + n, f"Re: Заявка 1 [#1] ответ {n}",
                                       "In-Reply-To: <bench-1@client.example>\n")
                               for n in range(1, args.comments + 1)))
    ingest(binary, config, comments_mbox)
    mailrules(binary, config, ["user", "add", EMAIL, "--role", "agent"],
              stdin=(PASSWORD + "\n").encode())
    shown = mailrules(binary, config, ["task", "show", "1", "--json"])
    comments = len(json.loads(shown).get("comments", []))
    print(f"task 1 has {comments} comments", file=sys.stderr)
    seed_seconds = time.perf_counter() - t0

    # A copy of the seeded store for each ingest run (the runs add mail).
    pristine = os.path.join(work, "pristine.db")
    shutil.copy(os.path.join(work, "store.db"), pristine)

    rows = []
    server = Server(binary, config)
    try:
        cookie = log_in(server.port)
        pages = [
            ("queue page `/tasks`", "/tasks", f"{args.tasks:,} tasks"),
            ("queue page, open only, second page", "/tasks?open=1&offset=50",
             f"{args.tasks:,} tasks"),
            ("queue page, search", "/tasks?search=%D0%BF%D1%80%D0%B8%D0%BD%D1%82%D0%B5%D1%80",
             f"{args.tasks:,} tasks, full-text `принтер`"),
            ("view \"mine\"", "/tasks?view=mine", "no task assigned"),
            ("view \"waiting for us\"", "/tasks?view=waiting-us", "every task"),
            ("view \"waiting for the customer\"", "/tasks?view=waiting-customer",
             "no task: the worst case"),
            ("view \"overdue\"", "/tasks?view=overdue", "no task: the worst case"),
            ("`/api/tasks` (JSON)", "/api/tasks", f"{args.tasks:,} tasks"),
            ("task page `/tasks/1`", "/tasks/1", f"{comments} comments"),
            ("`/api/version` (what each open queue polls)", "/api/version", ""),
        ]
        if args.refetch != "/tasks":  # a build from before /tasks/rows has no such page
            pages.insert(-1, ("the queue's rows alone `/tasks/rows`", "/tasks/rows",
                              "what an open queue refetches"))
        for name, path, detail in pages:
            timed_gets(server.port, cookie, path, 20)  # warm up
            times, size = timed_gets(server.port, cookie, path, args.requests)
            rows.append((name, detail, statistics.median(times) * 1000,
                         percentile(times, 99) * 1000, max(times) * 1000, size))
    finally:
        server.stop()

    extra_mbox = os.path.join(work, "extra.mbox")
    write_mbox(extra_mbox, (message(10_000_000 + n, f"Новая заявка {n}")
                            for n in range(1, args.ingest + 1)))
    alone, polled, alone_cpu, polled_cpu, clients_cpus = [], [], [], [], []
    polls = [0, 0]
    for _ in range(args.runs):
        for with_clients in (False, True):
            shutil.copy(pristine, os.path.join(work, "store.db"))
            for suffix in ("-wal", "-shm"):
                try:
                    os.remove(os.path.join(work, "store.db" + suffix))
                except FileNotFoundError:
                    pass
            server = Server(binary, config)
            stop = threading.Event()
            threads = []
            try:
                if with_clients:
                    cookie = log_in(server.port)
                    for _ in range(args.clients):
                        t = threading.Thread(target=poller,
                                             args=(server.port, cookie, stop, polls, args.poll,
                                                   args.refetch))
                        t.start()
                        threads.append(t)
                    time.sleep(2)  # every client has its page and polls
                cpu_before = server.cpu_seconds()
                own = os.times()
                seconds = ingest(binary, config, extra_mbox)
                server_cpu = server.cpu_seconds() - cpu_before
                own_after = os.times()
                clients_cpu = own_after.user + own_after.system - own.user - own.system
            finally:
                stop.set()
                for t in threads:
                    t.join()
                server.stop()
            (polled if with_clients else alone).append(seconds)
            (polled_cpu if with_clients else alone_cpu).append(server_cpu)
            if with_clients:
                clients_cpus.append(clients_cpu)
    alone_rate = args.ingest / statistics.median(alone)
    polled_rate = args.ingest / statistics.median(polled)
    cost = (1 - polled_rate / alone_rate) * 100

    print(f"mailrules web benchmark: {args.tasks:,} tasks, task 1 with {comments} comments, "
          f"{args.requests} requests per page; seeding took {seed_seconds:.0f} s")
    print(f"machine: {os.cpu_count()} CPUs; 1-minute load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    print()
    print("| page | store | median | p99 | slowest | size | goal |")
    print("|---|---|---|---|---|---|---|")
    for name, detail, median, p99, slowest, size in rows:
        goal = "p99 < 50 ms: " + ("yes" if p99 < 50 else "no") \
            if "queue page `" in name or "task page" in name else ""
        print(f"| {name} | {detail} | {median:.1f} ms | {p99:.1f} ms | {slowest:.1f} ms | "
              f"{size / 1024:.0f} KiB | {goal} |")
    print()
    print("| ingest of {:,} messages into the served store | msg/s (median of {}) | runs (s) "
          "| the server's CPU during the ingest (median) |".format(args.ingest, args.runs))
    print("|---|---|---|---|")
    print(f"| no browser open | {alone_rate:,.0f} | "
          f"{', '.join(f'{s:.2f}' for s in alone)} | {statistics.median(alone_cpu):.2f} s |")
    print(f"| {args.clients} browsers polling the queue every {args.poll:g} s | "
          f"{polled_rate:,.0f} | {', '.join(f'{s:.2f}' for s in polled)} | "
          f"{statistics.median(polled_cpu):.2f} s |")
    print()
    print(f"cost of the polling to the ingest: {cost:.1f} % (goal < 10 %: "
          f"{'yes' if cost < 10 else 'no'}); the clients made {polls[0]:,} version polls and "
          f"fetched {args.refetch} {polls[1]:,} times")
    print(f"the {args.clients} clients themselves (Python, on the same {os.cpu_count()} CPUs as "
          f"the ingest and the server) used {statistics.median(clients_cpus):.2f} s of CPU "
          "during an ingest (median): real browsers would not take it from the ingest")
    if not args.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
