#!/usr/bin/env python3
"""Whether two stores hold the same after ingesting the same mail with two builds (a change
that only makes the store cheaper to write must leave exactly what it left before).

    same_store.py BEFORE/mailrules.db AFTER/mailrules.db

Compares every table row by row in rowid order. A batch stamps its rows with the wall clock,
so each time is replaced by its rank among the store's times; our own Message-IDs carry
random hex, which is masked. Kept bytes and dictionaries are compared by count (their
compression is not what a store-writing change may touch). Exit 0 when the same.
"""

import re
import sqlite3
import sys

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
OUR_ID = re.compile(r"[0-9a-f]{24}\.(\d+@)")
BY_COUNT = ("message_bytes", "mail_dictionaries")


def dump(path):
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    rows = {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables}
    stamps = sorted({v for t in rows.values() for r in t for v in r
                     if isinstance(v, str) and STAMP.match(v)})
    rank = {s: f"T{i}" for i, s in enumerate(stamps)}

    def norm(v):
        return OUR_ID.sub(r"X.\1", rank.get(v, v)) if isinstance(v, str) else v

    return {t: len(r) if t in BY_COUNT else [tuple(norm(v) for v in row) for row in r]
            for t, r in rows.items()}


def main():
    before, after = dump(sys.argv[1]), dump(sys.argv[2])
    same = True
    for table in sorted(set(before) | set(after)):
        a, b = before.get(table), after.get(table)
        if a == b:
            print(f"same       {table} ({a if isinstance(a, int) else len(a)} rows)")
            continue
        same = False
        print(f"DIFFERENT  {table}")
        if isinstance(a, list) and isinstance(b, list):
            print(f"  rows: {len(a)} before, {len(b)} after")
            for x, y in zip(a, b):
                if x != y:
                    print(f"  first difference:\n    {x}\n    {y}")
                    break
    print("the same" if same else "different")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
