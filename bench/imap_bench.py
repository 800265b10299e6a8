#!/usr/bin/env python3
"""IMAP half of the benchmark: a private Dovecot on 127.0.0.1 holding N messages.

Measures, in order:
  1. raw fetch: a plain imaplib client's `UID FETCH 1:* BODY.PEEK[]` of the whole folder
     (the physical limit of this setup: server, loopback, one client);
  2. daemon ingest: `mailrules run` from start until every message is committed in its store;
  3. file ingest of the same messages: `mailrules ingest` of a Maildir holding them, from
     process start to exit (the processing rate, the ceiling of 2);
  4. latency: with the daemon idling (IMAP IDLE), APPEND one new message at a time and wait
     until it is committed (then 0.1 s for the daemon to go back to IDLE); median, 99th
     percentile and worst; and what mailrules adds to the server's own notice: from the
     daemon's log, the time from its IDLE wake-up to the message's commit ("beside", on Cyrus
     only: the same against a plain client idling beside it the whole time, which the server
     notifies on its own timer, so it is shown but not the measure). Not on Dovecot: there a
     second idling session syncs the Maildir at the same moment as the daemon's, and one of
     them waits for the other's `dovecot-uidlist` dotlock, which Dovecot polls every 100-200
     ms (`LOCK_RANDOM_USLEEP_TIME` in its lib/file-dotlock.c): the bench's own watcher made the
     daemon's one-message `UID FETCH` take 60-600 ms in 1-3 samples of 100 (BENCHMARKS.md);
  5. the server's IDLE delay: the same with a plain client that only waits for `* N EXISTS`
     (the lower bound of 4);
  6. with --cyrus, 4 and 5 again against a private Cyrus (bench/cyrus.py), whose idled
     announces new mail within milliseconds where Dovecot waits 500 ms.
Prints one JSON object. Only loopback traffic; Dovecot gets its own temp config and a free
port, and is stopped at the end (also on failure).

    imap_bench.py --binary target/release/mailrules --rules DIR --maildir CORPUS
                  --count 5000 --latency 200 --latency-maildir OTHER --work DIR
"""

import argparse
import asyncio
import datetime
import imaplib
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

import cyrus as cyrus_server

USER = "support@acme.example"
# Seconds between a latency sample's commit and the next APPEND.
SETTLE = 0.1
PASSWORD = "bench password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    """Dovecot with its own config under `root`; as root, mail is owned by `dovecot`."""

    def __init__(self, root: str):
        self.root = root
        self.port = free_port()
        self.proc = None
        for sub in ("base", "state", "mail"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        os.chmod(root, 0o755)
        if os.geteuid() == 0:
            # Dovecot's auth and mail processes run as other users: they must reach `root`.
            d = os.path.dirname(os.path.abspath(root))
            while d != "/":
                if not os.stat(d).st_mode & 0o001:
                    raise SystemExit(f"{d} is not searchable by other users; Dovecot could not "
                                     "read its files (use a --work directory outside it)")
                d = os.path.dirname(d)
            pw = pwd.getpwnam("dovecot")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            login, internal = "dovenull", "dovecot"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            login = internal = pwd.getpwuid(self.uid).pw_name
        with open(os.path.join(root, "passwd"), "w") as f:
            f.write(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        r = root
        config = f"""base_dir = {r}/base
state_dir = {r}/state
log_path = {r}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login}
default_internal_user = {internal}
default_internal_group = {internal}
first_valid_uid = 1
mail_location = maildir:{r}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={r}/mail/%u
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  chroot =
}}
"""
        self.config = os.path.join(root, "dovecot.conf")
        with open(self.config, "w") as f:
            f.write(config)
        self.maildir = os.path.join(root, "mail", USER)

    def fill(self, source: str, count: int) -> int:
        """Puts the first `count` messages of a Maildir into the inbox, as delivered mail."""
        files = sorted(os.listdir(os.path.join(source, "cur")))[:count]
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, d), exist_ok=True)
        for name in files:
            shutil.copy(os.path.join(source, "cur", name), os.path.join(self.maildir, "cur", name))
        for base, dirs, names in os.walk(os.path.join(self.root, "mail")):
            for n in dirs + names:
                os.chown(os.path.join(base, n), self.uid, self.gid)
        os.chown(os.path.join(self.root, "mail"), self.uid, self.gid)
        return len(files)

    def start(self) -> None:
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.proc = subprocess.Popen([binary, "-F", "-c", self.config],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("dovecot did not start; its log:\n" + self.log())

    def log(self) -> str:
        try:
            with open(os.path.join(self.root, "dovecot.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port)
        imap.login(USER, PASSWORD)
        return imap


class DelayProxy:
    """Forwards a port of its own to `target_port`, holding every chunk `delay` seconds in
    each direction: a network with a round trip of 2 * delay between the daemon and the
    server, to see what the daemon's round trips cost where servers are not on loopback."""

    def __init__(self, target_port: int, delay: float):
        self.target_port, self.delay = target_port, delay
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_forever()

    async def _connection(self, client_in, client_out) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(client_in, server_out), self._pipe(server_in, client_out),
                             return_exceptions=True)

    async def _pipe(self, reader, writer) -> None:
        chunks: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                at, data = await chunks.get()
                late = at + self.delay - self.loop.time()
                if late > 0:
                    await asyncio.sleep(late)
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                chunks.put_nowait((self.loop.time(), data))
                if not data:
                    break
        finally:
            await delivering


def raw_fetch(dovecot: Dovecot, count: int) -> dict:
    imap = dovecot.client()
    imap.select("INBOX")
    # Let Dovecot build its index first, as it will have for the daemon.
    imap.uid("FETCH", "1:*", "(FLAGS)")
    start = time.monotonic()
    typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
    elapsed = time.monotonic() - start
    fetched = sum(1 for item in data if isinstance(item, tuple))
    size = sum(len(item[1]) for item in data if isinstance(item, tuple))
    imap.logout()
    if typ != "OK" or fetched != count:
        raise SystemExit(f"raw fetch got {fetched} of {count} messages ({typ})")
    return {"messages": fetched, "bytes": size, "seconds": elapsed, "per_second": fetched / elapsed}


def idle_notify(dovecot, count: int) -> dict:
    """The server's own IDLE delay: a plain client idles while another APPENDs; each sample is
    the time from just before APPEND until `* N EXISTS` reaches the idling client. No client
    can learn of new mail sooner, so this bounds APPEND → committed from below."""
    watcher = dovecot.client()
    watcher.select("INBOX")
    watcher.sock.settimeout(10)
    appender = dovecot.client()
    samples = []
    for i in range(count):
        tag = watcher._new_tag()
        watcher.send(tag + b" IDLE\r\n")
        if not watcher.readline().startswith(b"+"):
            raise SystemExit("the server refused IDLE")
        raw = (f"From: probe@example.org\r\nSubject: idle probe {i}\r\n"
               f"Message-ID: <idle-probe-{i}-{time.time_ns()}@bench.example>\r\n\r\nprobe\r\n")
        start = time.monotonic()
        appender.append("INBOX", None, None, raw.encode())
        while b"EXISTS" not in watcher.readline():
            pass
        samples.append(time.monotonic() - start)
        watcher.send(b"DONE\r\n")
        while not watcher.readline().startswith(tag):
            pass
    appender.logout()
    watcher.logout()
    return summary(samples)


def summary(samples: list) -> dict:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return {"samples": len(samples), "median_ms": statistics.median(samples) * 1000,
            "p99_ms": p99 * 1000, "max_ms": samples[-1] * 1000}


def write_config(work: str, dovecot, rules: str, port: int = 0) -> str:
    """The daemon's config for the server `dovecot` (reached at `port` when given: a proxy)."""
    with open(os.path.join(work, "imap.pass"), "w") as f:
        f.write(PASSWORD + "\n")
    config = os.path.join(work, "mailrules.toml")
    with open(config, "w") as f:
        f.write(f'''store = "mailrules.db"
rules = "{rules}"

[staff]
domains = ["acme.example"]

[[mailbox]]
name = "support"
host = "127.0.0.1"
port = {port or dovecot.port}
tls = "none"
user = "{USER}"
password_file = "imap.pass"
folder = "INBOX"
on_success = "flag"
on_failure = "flag"
idle = true
poll_interval = "60s"

[smtp]
host = "127.0.0.1"
port = 9
tls = "none"
from = "Поддержка ACME <support@acme.example>"
''')
    return config


def store_count(db: str) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM messages").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0  # not created yet, or mid-migration


def daemon_ingest(binary: str, config: str, db: str, count: int, log, timeout: float):
    start = time.monotonic()
    # The watcher's debug line "the server announced news" is when mailrules heard of new mail.
    env = dict(os.environ, MAILRULES_LOG="info,mailrules::daemon::watcher=debug")
    proc = subprocess.Popen([binary, "--config", config, "run"], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, env=env)
    done = 0
    while time.monotonic() - start < timeout:
        done = store_count(db)
        if done >= count:
            return proc, {"messages": done, "seconds": time.monotonic() - start,
                          "per_second": done / (time.monotonic() - start)}
        if proc.poll() is not None:
            return None, {"error": f"mailrules run exited with {proc.returncode} after "
                                   f"{done} messages"}
        time.sleep(0.02)
    return proc, {"error": f"only {done} of {count} messages committed in {timeout:.0f}s"}


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
        if not line.strip():
            break
    raise SystemExit("a latency message has no Message-ID")


class ExistsWatcher:
    """A plain client idling in `folder` for the whole run; notes when each `* N EXISTS`
    reaches it (monotonic seconds), as the server's own notice of new mail."""

    def __init__(self, server, folder: str = "INBOX"):
        self.imap = server.client()
        self.imap.select(folder)
        self.imap.sock.settimeout(None)
        self.seen = []
        self.lock = threading.Lock()
        self.tag = self.imap._new_tag()
        self.imap.send(self.tag + b" IDLE\r\n")
        if not self.imap.readline().startswith(b"+"):
            raise SystemExit("the server refused IDLE")
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self) -> None:
        while True:
            try:
                line = self.imap.readline()
            except (OSError, ValueError):
                return
            if not line or line.startswith(self.tag):
                return
            if b"EXISTS" in line:
                with self.lock:
                    self.seen.append(time.monotonic())

    def first_after(self, start: float):
        with self.lock:
            return next((t for t in self.seen if t >= start), None)

    def stop(self) -> None:
        try:
            self.imap.send(b"DONE\r\n")
            self.thread.join(5)
            self.imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def log_time(line: str) -> float:
    """Seconds since the epoch of a daemon log line (`2026-12-01T21:15:54.794213Z ...`)."""
    stamp = line.split(" ", 1)[0].rstrip("Z")
    return datetime.datetime.fromisoformat(stamp).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def added_by_daemon(log_path: str, message_ids: list) -> dict:
    """For each message: from the moment the daemon heard of news in IDLE (its debug line)
    to the moment it logged the message as applied, which it does after the commit. That is
    what mailrules adds to the server's own notice, measured inside it, with the server's
    timing (500 ms on Dovecot, whatever idled does on Cyrus) left out."""
    with open(log_path, errors="replace") as f:
        lines = f.readlines()
    wanted = {m.strip("<>"): None for m in message_ids}
    last_news = None
    samples = []
    for line in lines:
        if "the server announced news" in line:
            last_news = log_time(line)
            continue
        if "applied" not in line or "message_id=" not in line:
            continue
        mid = line.split('message_id="', 1)[1].split('"', 1)[0]
        if mid in wanted and wanted[mid] is None and last_news is not None:
            wanted[mid] = log_time(line) - last_news
            samples.append(wanted[mid])
    if not samples:
        return {"error": "no IDLE wake-up before the samples in the daemon's log"}
    return summary(samples)


def latency(server, db: str, source: str, count: int, proc, timeout: float,
            log_path: str = "", beside: bool = True) -> dict:
    files = sorted(os.listdir(os.path.join(source, "cur")))[:count]
    imap = server.client()
    watcher = ExistsWatcher(server) if beside else None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    samples = []
    added = []
    ids = []
    for name in files:
        with open(os.path.join(source, "cur", name), "rb") as f:
            raw = f.read()
        mid = message_id_of(raw)
        ids.append(mid)
        bare = mid.strip("<>")
        start = time.monotonic()
        imap.append("INBOX", None, None, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        while True:
            # `key` is the unique (indexed) Message-ID; a scan here would slow the daemon.
            row = con.execute("SELECT 1 FROM messages WHERE key IN (?, ?)", (mid, bare)).fetchone()
            if row:
                committed = time.monotonic()
                samples.append(committed - start)
                # Let the daemon acknowledge and go back to IDLE: mail that arrives while it is
                # still busy shows up in its next command's answer, without IDLE's delay.
                time.sleep(SETTLE)
                notice = watcher.first_after(start) if watcher else None
                if notice is not None:
                    added.append(committed - notice)
                break
            if time.monotonic() - start > timeout or proc.poll() is not None:
                imap.logout()
                if watcher:
                    watcher.stop()
                return {"error": f"message {len(samples) + 1} not committed within {timeout:.0f}s",
                        "samples": len(samples)}
            time.sleep(0.001)
    imap.logout()
    if watcher:
        watcher.stop()
    result = summary(samples)
    if added:
        result["beside"] = summary_signed(added)
    if log_path:
        result["added"] = added_by_daemon(log_path, ids)
    return result


def summary_signed(samples: list) -> dict:
    """Like summary(), for differences that may be below zero (the daemon's own IDLE can hear
    of a message a little before the watcher's does)."""
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return {"samples": len(samples), "median_ms": statistics.median(samples) * 1000,
            "p99_ms": p99 * 1000, "max_ms": samples[-1] * 1000}


def file_ingest(binary: str, work: str, source: str, count: int, rules: str) -> dict:
    """`mailrules ingest` of a Maildir holding the same messages the folder holds."""
    maildir = os.path.join(work, "same-messages")
    os.makedirs(os.path.join(maildir, "cur"), exist_ok=True)
    os.makedirs(os.path.join(maildir, "new"), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(source, "cur")))[:count]:
        shutil.copy(os.path.join(source, "cur", name), os.path.join(maildir, "cur", name))
    run = os.path.join(work, "file-ingest")
    os.makedirs(run, exist_ok=True)
    config = os.path.join(run, "mailrules.toml")
    with open(config, "w") as f:
        f.write(f'store = "mailrules.db"\nrules = "{rules}"\n\n[staff]\n'
                'domains = ["acme.example"]\n\n[smtp]\nhost = "127.0.0.1"\nport = 9\n'
                'tls = "none"\nfrom = "Поддержка ACME <support@acme.example>"\n')
    start = time.monotonic()
    proc = subprocess.run([binary, "--config", config, "ingest", maildir],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        return {"error": f"mailrules ingest exited with {proc.returncode}"}
    return {"messages": count, "seconds": elapsed, "per_second": count / elapsed}


def cyrus_latency(binary: str, rules: str, source: str, count: int, idle_samples: int,
                  work: str) -> dict:
    """Rows 4 and 5 against a private Cyrus."""
    why_not = cyrus_server.available()
    if why_not:
        return {"error": why_not}
    server = cyrus_server.Cyrus(os.path.join(work, "cyrus"), USER, PASSWORD, free_port)
    proc = None
    result = {}
    try:
        server.start()
        run = os.path.join(work, "cyrus-daemon")
        os.makedirs(run, exist_ok=True)
        config = write_config(run, server, rules)
        db = os.path.join(run, "mailrules.db")
        log_path = os.path.join(run, "daemon.log")
        with open(log_path, "ab") as log:
            proc, started = daemon_ingest(binary, config, db, 0, log, 60)
        if proc is None:
            return {"error": started.get("error", "the daemon did not start")}
        time.sleep(1.0)  # let it log in and settle into IDLE
        result["latency"] = latency(server, db, source, count, proc, 30, log_path)
        result["idle_notify"] = idle_notify(server, idle_samples)
    finally:
        stop_daemon(proc)
        server.stop()
    return result


def stop_daemon(proc) -> None:
    """Stops a daemon started by `daemon_ingest` (SIGTERM, then SIGKILL after 20 s)."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--maildir", required=True, help="corpus Maildir to load the server from")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--latency", type=int, default=200)
    ap.add_argument("--latency-maildir", required=True, help="messages to APPEND one by one")
    ap.add_argument("--idle-samples", type=int, default=20,
                    help="APPENDs timed with a plain idling client")
    ap.add_argument("--work", required=True)
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--rtt", type=float, default=0,
                    help="milliseconds of round trip added between the daemon and Dovecot "
                         "(a proxy; the bench's own clients talk to Dovecot directly)")
    ap.add_argument("--cyrus", action="store_true",
                    help="also time APPEND → committed and → * N EXISTS on a private Cyrus")
    args = ap.parse_args()

    result = {}
    dovecot = Dovecot(os.path.join(args.work, "dovecot"))
    proc = None
    log_path = os.path.join(args.work, "daemon.log")
    try:
        loaded = dovecot.fill(args.maildir, args.count)
        dovecot.start()
        result["raw_fetch"] = raw_fetch(dovecot, loaded)
        proxy = DelayProxy(dovecot.port, args.rtt / 2000) if args.rtt else None
        config = write_config(args.work, dovecot, os.path.abspath(args.rules),
                              proxy.port if proxy else 0)
        db = os.path.join(args.work, "mailrules.db")
        with open(log_path, "ab") as log:
            proc, result["daemon"] = daemon_ingest(args.binary, config, db, loaded, log,
                                                   args.timeout)
        if proc is not None and "error" not in result["daemon"]:
            time.sleep(0.5)  # let it settle into IDLE
            result["latency"] = latency(dovecot, db, args.latency_maildir, args.latency, proc,
                                        30, log_path, beside=False)
            result["idle_notify"] = idle_notify(dovecot, args.idle_samples)
    finally:
        stop_daemon(proc)
        dovecot.stop()
    result["file_ingest"] = file_ingest(args.binary, args.work, args.maildir, args.count,
                                        os.path.abspath(args.rules))
    if args.cyrus:
        result["cyrus"] = cyrus_latency(args.binary, os.path.abspath(args.rules),
                                        args.latency_maildir, args.latency, args.idle_samples,
                                        args.work)
    result["daemon_log"] = log_path
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
