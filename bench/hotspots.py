#!/usr/bin/env python3
"""Who calls the hot leaves: reads `perf script` output (DWARF call graphs) on stdin and, for
each of the hottest leaf functions, prints its share and the program functions above it.

    perf script -i perf.data | hotspots.py [--top 15]
"""

import argparse
import collections
import re
import sys

OWN = ("mailrules::", "mail_parser::")


def stacks(lines):
    current = []
    for line in lines:
        if not line.strip():
            if current:
                yield current
            current = []
        elif line[0] in " \t":
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                current.append(re.sub(r"\+0x[0-9a-f]+$", "", parts[1].split(" (")[0]))
    if current:
        yield current


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    samples = list(stacks(sys.stdin))
    total = len(samples) or 1
    # A leaf is the innermost frame that is ours, SQLite's or the allocator's entry point.
    leaves = collections.Counter()
    chains = collections.defaultdict(collections.Counter)
    for s in samples:
        own = [f for f in s if f.startswith(OWN)]
        leaf = next((f for f in s if f.startswith(OWN) or f.startswith("sqlite3_")), s[0])
        if leaf.startswith("sqlite3_") and own:
            # SQLite's time, by the store function that asked for it.
            leaf = f"SQLite ({leaf}) for {own[0]}"
        leaves[leaf] += 1
        above = [f.replace("mailrules::", "") for f in own if f != leaf][:3]
        chains[leaf][" <- ".join(above)] += 1
    for leaf, n in leaves.most_common(args.top):
        print(f"{100 * n / total:5.1f}%  {leaf[:110]}")
        for chain, m in chains[leaf].most_common(2):
            print(f"        {100 * m / total:5.1f}%  <- {chain[:140]}")


if __name__ == "__main__":
    main()
