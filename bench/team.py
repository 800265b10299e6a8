#!/usr/bin/env python3
"""Working tasks by hand in a big store: how long `task list --open --limit 50`,
`task history N` and a manual change (`task set`, `task comment`) take with 200,000 tasks.

Builds the store once: the binary creates the schema, then 200,000 tasks (one in 20 open),
five history rows each (1,000,000 in `task_events`), a field and a comment on every task are
written straight into the SQLite file, the way a year of mail would have left them. Then every
command runs `--runs` times as a user runs it (a new process each time, the shipped rules
loaded, the store held open by another connection as the running daemon holds it) and the
median and the slowest wall-clock times are printed as a Markdown table, then the manual
change's own parts as `task set` timed them inside the store (lock, change, commit).
Python 3 standard library only.

    team.py --binary target/release/mailrules --rules rules [--tasks 200000] [--runs 15]
            [--work DIR]
"""

import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

OPEN = "Нужно ответить клиенту"
CLOSED = "Завершенная"


def build(binary: str, config: str, store: str, tasks: int) -> None:
    run(binary, config, ["task", "list", "--limit", "1"])  # creates the schema
    db = sqlite3.connect(store)
    db.executescript(
        f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {tasks})
        INSERT INTO tasks (title, description, status, created_at, updated_at)
          SELECT 'Заявка ' || i, 'Текст заявки ' || i,
                 CASE WHEN i % 20 = 0 THEN '{OPEN}' ELSE '{CLOSED}' END,
                 '2026-01-01T10:00:00Z', '2026-01-02T10:00:00Z' FROM n;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {tasks * 5})
        INSERT INTO task_events (task_id, at, by, kind, to_value)
          SELECT (i % {tasks}) + 1, '2026-01-01T10:00:00Z', 'rule:new-request', 'comment', 'x'
          FROM n;
        INSERT INTO task_fields (task_id, name, value, updated_at)
          SELECT id, 'Номер заказа', id, updated_at FROM tasks;
        INSERT INTO comments (task_id, author, text, created_at)
          SELECT id, 'client@example.org', 'Комментарий к заявке ' || id, created_at FROM tasks;
        """
    )
    db.commit()
    db.close()


def run(binary: str, config: str, args: list, commits: list = None) -> float:
    """Wall-clock seconds of one command; a change's own timing (the store's debug line:
    taking the lock, the change with its triggers and history, the commit) appended to
    `commits` when given."""
    log = "warn,mailrules::store=debug" if commits is not None else "warn"
    env = dict(os.environ, MAILRULES_USER="anna@acme.example", MAILRULES_LOG=log)
    start = time.perf_counter()
    done = subprocess.run([binary, "--config", config] + args, check=True, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if commits is not None:
        for line in done.stderr.splitlines():
            if "change is committed" in line:
                commits.append({k: float(v) for k, v in re.findall(r"(\w+_ms)=([0-9.]+)", line)})
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--tasks", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--work")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="mailrules-team-")
    config = os.path.join(work, "mailrules.toml")
    store = os.path.join(work, "store.db")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f'store = "{store}"\nrules = "{os.path.abspath(args.rules)}"\n')
    build(args.binary, config, store, args.tasks)
    # The daemon keeps the store open: the last connection to close a WAL store copies the
    # whole WAL into it (a checkpoint with its fsyncs), which each command would otherwise pay
    # on leaving. An open connection stands for the running (idle) daemon.
    daemon = sqlite3.connect(store)
    daemon.execute("SELECT COUNT(*) FROM tasks WHERE id = 1").fetchone()
    run(args.binary, config, ["task", "list", "--limit", "1"])  # the WAL of the build copied
    middle = str(args.tasks // 2)
    commands = [
        ("task list --open --limit 50", ["task", "list", "--open", "--limit", "50"]),
        ("task list --open --limit 50 --offset 5000",
         ["task", "list", "--open", "--limit", "50", "--offset", "5000"]),
        ("task history N", ["task", "history", middle, "--json"]),
        ("task set N --status (alternating)", None),
        ("task comment N TEXT", ["task", "comment", middle, "заметка"]),
    ]
    print(f"{args.tasks:,} tasks, {args.tasks * 5:,} history rows; {args.runs} runs each, "
          "wall-clock of the whole process\n")
    print("| command | median | slowest |")
    print("|---|---|---|")
    commits = []
    for name, argv in commands:
        times = []
        for i in range(args.runs):
            if argv is None:
                status = OPEN if i % 2 == 0 else CLOSED
                times.append(run(args.binary, config, ["task", "set", middle, "--status", status],
                                 commits))
            else:
                times.append(run(args.binary, config, argv))
        print(f"| `{name}` | {statistics.median(times) * 1000:.1f} ms "
              f"| {max(times) * 1000:.1f} ms |")
    # The change alone, inside the `task set` processes above: what the store's
    # `apply_change` logs at debug level (no process start, no rule loading).
    for key, what in (("lock_ms", "taking the write lock (`BEGIN IMMEDIATE`)"),
                      ("change_ms", "the change: actions, triggers, history rows"),
                      ("commit_ms", "`COMMIT` (the WAL's fsync)"),
                      ("total_ms", "a manual change, lock to commit (`apply_change`)")):
        values = [c[key] for c in commits if key in c]
        if values:
            print(f"| {what} | {statistics.median(values):.2f} ms | {max(values):.2f} ms |")
    sys.stdout.flush()
    daemon.close()


if __name__ == "__main__":
    main()
