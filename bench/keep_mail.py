#!/usr/bin/env python3
"""What keeping every message's original bytes costs: two builds, one corpus, one table.

Ingests the same corpus (a fresh store each run) with a build from before the bytes were
kept and one from after, alternating (before, after, before, after, ...) so that both see the
same load on a shared machine, and prints one Markdown table: wall time (median), CPU time
(median), messages per second, and the store's size per 10,000 messages (the database file
after the process exits; SQLite folds the WAL into it on close).

    keep_mail.py --before OLD_BINARY --after NEW_BINARY [--count 10000] [--runs 3]
                 [--rules 100] [--work DIR] [--shipped rules]

The corpus and rules come from gen_corpus.py and gen_rules.py (seeded, deterministic).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402


def store_bytes(directory: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, name))
               for name in os.listdir(directory) if name.startswith("mailrules.db"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--shipped", default="rules")
    ap.add_argument("--work")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="mailrules-keep-mail-")
    corpus = os.path.join(work, "corpus")
    rules = os.path.join(work, f"rules{args.rules}")
    if not os.path.isdir(corpus):
        run.step(run.python("gen_corpus.py", "--count", str(args.count), "--out", corpus))
    if not os.path.isdir(rules):
        run.python("gen_rules.py", "--count", str(args.rules), "--out", rules,
                   "--shipped", os.path.abspath(args.shipped))
    builds = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    results = {name: [] for name in builds}
    for i in range(args.runs):
        for name, binary in builds.items():
            directory = os.path.join(work, f"{name}{i}")
            shutil.rmtree(directory, ignore_errors=True)
            config = run.write_config(directory, rules)
            result = run.timed_ingest(binary, config, corpus)
            result["store"] = store_bytes(directory)
            run.step(f"{name} run {i + 1}: {result['seconds']:.2f} s, {result['cpu']:.2f} s CPU, "
                     f"{result['store'] / 2**20:.1f} MiB")
            results[name].append(result)
    print(f"| {args.count:,} messages, {args.rules} rules, {args.runs} runs each, alternating "
          f"| wall (median) | CPU (median) | rate | store | store per 10,000 messages |")
    print("|---|---|---|---|---|---|")
    for name in builds:
        rs = results[name]
        wall = statistics.median(r["seconds"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        size = rs[-1]["store"]
        each = ", ".join("%.2f" % r["seconds"] for r in rs)
        print(f"| {name} | {wall:.2f} s ({each}) "
              f"| {cpu:.2f} s | {run.fmt_rate(args.count / wall)} | {size / 2**20:.1f} MiB "
              f"| {size / args.count * 10000 / 2**20:.1f} MiB |")
    before = statistics.median(r["seconds"] for r in results["before"])
    after = statistics.median(r["seconds"] for r in results["after"])
    cpu_before = statistics.median(r["cpu"] for r in results["before"])
    cpu_after = statistics.median(r["cpu"] for r in results["after"])
    print(f"\nafter / before: wall {after / before:.3f}, CPU {cpu_after / cpu_before:.3f}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
