#!/usr/bin/env python3
"""Dovecot's own time to hand a just-APPENDed message to an idling client, timed the way the
daemon's watcher works (bench/idle_phases.py splits the daemon's samples into the same
phases): `* N EXISTS` in IDLE -> DONE and `UID SEARCH UID n:*` ("search") -> `UID FETCH uid
(UID BODY.PEEK[])` ("fetch") -> the same fetch again ("fetch again": the message's first
fetch against later ones) -> `UID STORE +FLAGS.SILENT (\\Flagged)` ("store"). A plain imaplib
client, no mailrules: what the server costs on its own, with FILL messages already in the
folder. Prints each phase's median, 90th and 99th percentile and worst, in milliseconds.

    bench/fetch_floor.py --fill-from CORPUS --fill 3000 --append-from LATENCY_MAILDIR \
        --count 250 --work /tmp/floor
"""

import argparse
import os
import time

import imap_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fill-from", required=True, help="Maildir whose first FILL messages the folder holds")
    ap.add_argument("--fill", type=int, default=3000)
    ap.add_argument("--append-from", required=True, help="Maildir of the messages APPENDed one by one")
    ap.add_argument("--count", type=int, default=250)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    dovecot = imap_bench.Dovecot(os.path.join(args.work, "dovecot"))
    dovecot.fill(args.fill_from, args.fill)
    dovecot.start()
    try:
        phases = run(dovecot, args.append_from, args.count)
    finally:
        dovecot.stop()
    for name, samples in phases.items():
        xs = sorted(x * 1000 for x in samples)
        pick = lambda q: xs[min(len(xs) - 1, int(len(xs) * q))]  # noqa: E731
        print(f"{name}: median {pick(0.5):.1f}, p90 {pick(0.9):.1f}, p99 {pick(0.99):.1f}, "
              f"max {xs[-1]:.1f} ms")


def run(dovecot, source: str, count: int) -> dict:
    watcher = dovecot.client()
    watcher.select("INBOX")
    watcher.sock.settimeout(10)
    _, data = watcher.uid("SEARCH", "ALL")
    last = max((int(x) for x in data[0].split()), default=0)
    watcher.uid("FETCH", "1:*", "(FLAGS)")  # the index built, as the daemon's would be
    appender = dovecot.client()
    phases = {"search": [], "fetch": [], "fetch again": [], "store": []}
    for name in sorted(os.listdir(os.path.join(source, "cur")))[:count]:
        with open(os.path.join(source, "cur", name), "rb") as f:
            raw = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        tag = watcher._new_tag()
        watcher.send(tag + b" IDLE\r\n")
        if not watcher.readline().startswith(b"+"):
            raise SystemExit("the server refused IDLE")
        appender.append("INBOX", None, None, raw)
        while b"EXISTS" not in watcher.readline():
            pass
        t0 = time.monotonic()
        watcher.send(b"DONE\r\n")
        while not watcher.readline().startswith(tag):
            pass
        _, data = watcher.uid("SEARCH", f"UID {last + 1}:*")
        uids = ",".join(x.decode() for x in data[0].split() if int(x) > last)
        t1 = time.monotonic()
        watcher.uid("FETCH", uids, "(UID BODY.PEEK[])")
        t2 = time.monotonic()
        watcher.uid("FETCH", uids, "(UID BODY.PEEK[])")
        t3 = time.monotonic()
        watcher.uid("STORE", uids, "+FLAGS.SILENT", "(\\Flagged)")
        t4 = time.monotonic()
        last = max(int(u) for u in uids.split(","))
        for key, took in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            phases[key].append(took)
        time.sleep(0.1)  # as bench/imap_bench.py's latency run: the next APPEND finds IDLE
    appender.logout()
    watcher.logout()
    return phases


if __name__ == "__main__":
    main()
