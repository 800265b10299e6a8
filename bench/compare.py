#!/usr/bin/env python3
"""Compares two builds of mailrules on the same corpus: the before/after of a change.

Generates one corpus and one rule set, then ingests the corpus into a fresh store with each
binary in turn (before, after, before, after, ...), so that both see the same machine load,
and prints the median rate, the median CPU time and their ratio as a Markdown table. Only the
ratio of one run means anything on a shared machine.

    compare.py --before OLD/target/release/mailrules --after target/release/mailrules \
               --shipped rules [--messages 20000] [--rules 100] [--runs 3] [--seed 1]
               [--mix project|heavy]
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import python, timed_ingest, write_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the binary without the change")
    ap.add_argument("--after", required=True, help="the binary with the change")
    ap.add_argument("--shipped", required=True, help="the project's rules/ directory")
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mix", default="project",
                    help="the corpus's mix (gen_corpus.py --mix): project or heavy")
    ap.add_argument("--before-config", default="",
                    help="top-level config lines for the before runs, e.g. 'keep_mail = \"failed\"'")
    ap.add_argument("--after-config", default="",
                    help="the same for the after runs (one binary, two configs: same --before "
                    "and --after)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailrules-compare-") as work:
        corpus = os.path.join(work, "corpus")
        python("gen_corpus.py", "--count", str(args.messages), "--out", corpus,
               "--seed", str(args.seed), "--mix", args.mix)
        rules = os.path.join(work, "rules")
        python("gen_rules.py", "--count", str(args.rules), "--out", rules,
               "--shipped", args.shipped)
        results = {"before": [], "after": []}
        for run in range(args.runs):
            for name in ("before", "after"):
                binary = getattr(args, name)
                extra = getattr(args, f"{name}_config")
                config = write_config(os.path.join(work, f"{name}{run}"), rules,
                                      extra + "\n" if extra else "")
                result = timed_ingest(binary, config, corpus)
                results[name].append(result)
                print(f"compare: {name} run {run + 1}: {result['seconds']:.2f} s, "
                      f"{result['cpu']:.2f} s CPU", file=sys.stderr, flush=True)

    def rate(name: str) -> float:
        return args.messages / statistics.median(r["seconds"] for r in results[name])

    def cpu(name: str) -> float:
        return statistics.median(r["cpu"] for r in results[name])

    print(f"| {args.messages:,} messages ({args.mix} mix), {args.rules} rules, median of {args.runs} "
          f"| before | after | after / before |")
    print("|---|---|---|---|")
    print(f"| ingest rate | {rate('before'):,.0f} msg/s | {rate('after'):,.0f} msg/s "
          f"| {rate('after') / rate('before'):.2f} |")
    print(f"| CPU time (user + system) | {cpu('before'):.2f} s | {cpu('after'):.2f} s "
          f"| {cpu('after') / cpu('before'):.2f} |")


if __name__ == "__main__":
    main()
