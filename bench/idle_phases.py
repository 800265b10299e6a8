#!/usr/bin/env python3
"""Splits each IDLE sample of a daemon log (bench/imap_bench.py's daemon.log, written with
MAILRULES_LOG=info,mailrules::daemon::watcher=debug) into its phases: the server's notice to
the `UID SEARCH` answer ("search"), to the `UID FETCH` answer ("fetch"), to the commit
("apply": parse, rules, apply, commit), and to the acknowledgement ("ack"). After news the
watcher writes the search and the first batch's fetch right behind IDLE's DONE: "search" then
holds leaving IDLE and both answers, and "fetch" only the hand-over. (Before 2026-12-02 the
news line came after DONE's answer, so leaving IDLE was in no phase.) Prints the slowest
samples and each phase's median, 90th and 99th percentile, in milliseconds.

    bench/idle_phases.py WORK/daemon.log
"""

import datetime
import sys


def log_time(line: str) -> float:
    return datetime.datetime.fromisoformat(line.split(" ", 1)[0].rstrip("Z")).timestamp()


def samples(lines: list) -> list:
    rows, current = [], None
    for line in lines:
        if "the server announced news" in line:
            current = {"news": log_time(line)}
        elif current is None:
            continue
        elif "found" in line and "new message" in line and "found" not in current:
            current["found"] = log_time(line)
        elif "fetched" in line and "fetched" not in current:
            current["fetched"] = log_time(line)
        elif " applied" in line and "applied" not in current:
            current["applied"] = log_time(line)
        elif "acknowledged" in line and "ack" not in current:
            current["ack"] = log_time(line)
            rows.append(current)
            current = None
    phases = []
    for r in rows:
        if all(k in r for k in ("news", "found", "fetched", "applied")):
            ms = lambda a, b: (r[b] - r[a]) * 1000  # noqa: E731
            phases.append((ms("news", "applied"), ms("news", "found"), ms("found", "fetched"),
                           ms("fetched", "applied"), ms("applied", "ack")))
    return phases


def main() -> None:
    with open(sys.argv[1], errors="replace") as f:
        phases = samples(f.read().splitlines())
    if not phases:
        raise SystemExit("no IDLE samples in the log (was watcher debug logging on?)")
    names = ["added", "search", "fetch", "apply", "ack"]
    print(f"{len(phases)} samples; the slowest:")
    print("  ".join(f"{n:>7}" for n in names))
    for p in sorted(phases, reverse=True)[:10]:
        print("  ".join(f"{x:7.1f}" for x in p))
    for i, name in enumerate(names):
        xs = sorted(p[i] for p in phases)
        pick = lambda q: xs[min(len(xs) - 1, int(len(xs) * q))]  # noqa: E731
        print(f"{name}: median {pick(0.5):.1f}, p90 {pick(0.9):.1f}, p99 {pick(0.99):.1f} ms")


if __name__ == "__main__":
    main()
