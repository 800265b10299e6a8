#!/usr/bin/env python3
"""The growth run: does a message cost the same in a store that already holds 180,000?

Ingests N messages (200,000 by default) into ONE store, a slice at a time (20,000 by default),
and prints the time per message of each slice. The corpus is the ordinary benchmark mix
(`gen_corpus.py`: new requests, threaded replies, surveys, orders, partner mail) with a few very
busy senders on top, the ones that make a store's history pile up around one address:

- a courier service sending shipment notices from an address that is not a robot's (no
  `noreply`, no `Auto-Submitted`), so every notice opens a task and the automatic reply to it
  is rate-limited: thousands of suppressed replies to one recipient;
- a monitoring robot (`[PROBLEM]`/`[OK]` alerts from the same few hosts), likewise;
- a colleague at a client company forwarding mail (`Fwd:`), who is not staff, so she is the
  sender of each of them.

Generated deterministically (the seed gives the same bytes), one slice at a time into the work
directory and deleted after it was ingested, so the disk holds one slice, not the corpus.
Python 3 standard library only.

    growth.py --binary target/release/mailrules --rules rules [--messages 200000]
              [--slice 20000] [--work DIR] [--seed 7]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_corpus  # noqa: E402
import world  # noqa: E402

COURIER = ("Экспресс-доставка", "info@express-courier.example")
MONITORING = ("Zabbix", "monitoring@ops.client-hosting.example")
COLLEAGUE = ("Ольга Секретарь", "olga.sekretar@client-holding.example")

# The ordinary mix, thinned, with the busy senders making up a third of the mail.
GROWTH_MIX = [
    ("request", 20), ("reply", 18), ("survey", 7), ("delivery", 3), ("satisfaction", 2),
    ("order", 4), ("partner", 13), ("courier", 15), ("monitoring", 11), ("forward", 7),
]
HOSTS = ["web-1", "web-2", "web-3", "db-1", "db-2", "cache-1", "mail-1", "backup-1"]
CHECKS = ["disk usage {n}% on /", "load average {n}", "{n} failed logins", "ping loss {n}%",
          "free memory {n} MB"]
SHIPMENT = ["принято к отправке", "передано курьеру", "прибыло в пункт выдачи",
            "вручено получателю", "возвращено отправителю"]


class GrowthCorpus(gen_corpus.Corpus):
    """The benchmark corpus with the busy senders added to its mix."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self.kinds, weights = zip(*GROWTH_MIX)
        self.cum, total = [], 0
        for w in weights:
            total += w
            self.cum.append(total)
        self.total = total

    def courier(self):
        number = f"CR{self.rng.randrange(10**9):09d}"
        status = self.rng.choice(SHIPMENT)
        body = (f"Здравствуйте!\n\nСтатус отправления {number}: {status}.\n"
                f"Дата: {self.date().strftime('%d.%m.%Y %H:%M')}\n"
                f"Пункт: {self.rng.choice(gen_corpus.RU_LAST)}ская ул., {self.rng.randint(1, 99)}\n\n"
                "Экспресс-доставка, отслеживание на express-courier.example\n")
        headers = [("From", COURIER), ("To", world.SUPPORT_ADDRESS),
                   ("Subject", f"Отправление {number}: {status}"),
                   ("Message-ID", self.message_id("express-courier.example"))]
        self.tasks += 1
        return headers, body, True, "plain", None

    def monitoring(self):
        host = self.rng.choice(HOSTS)
        check = self.rng.choice(CHECKS).format(n=self.rng.randint(50, 99))
        state = "PROBLEM" if self.rng.random() < 0.6 else "OK"
        body = (f"Trigger: {check}\nHost: {host}.client-hosting.example\nSeverity: "
                f"{self.rng.choice(['Warning', 'Average', 'High'])}\nState: {state}\n"
                f"Event time: {self.date().strftime('%Y-%m-%d %H:%M:%S')}\n")
        headers = [("From", MONITORING), ("To", world.SUPPORT_ADDRESS),
                   ("Subject", f"[{state}] {host}: {check}"),
                   ("Message-ID", self.message_id("ops.client-hosting.example"))]
        self.tasks += 1
        return headers, body, False, "plain", None

    def forward(self):
        ru = True
        name, addr = self.client(ru)
        subject = self.rng.choice(gen_corpus.RU_SUBJECTS)
        when = self.date().strftime("%a, %d %b %Y %H:%M")
        body = ("Добрый день, пересылаю письмо клиента.\n\n"
                "---------- Forwarded message ---------\n"
                f"From: {name} <{addr}>\nDate: {when}\nSubject: {subject}\n\n"
                + self.text(ru, 300, 1200))
        headers = [("From", COLLEAGUE), ("To", world.SUPPORT_ADDRESS),
                   ("Subject", f"Fwd: {subject}"),
                   ("Message-ID", self.message_id("client-holding.example"))]
        self.tasks += 1
        return headers, body, ru, self.alternative_or_plain(), None


def write_config(directory: str, rules: str) -> str:
    path = os.path.join(directory, "mailrules.toml")
    with open(path, "w") as f:
        f.write(f'''store = "mailrules.db"
rules = "{os.path.abspath(rules)}"

[staff]
domains = ["{world.STAFF_DOMAIN}"]

[smtp]
host = "127.0.0.1"
port = 9
tls = "none"
from = "Поддержка ACME <{world.SUPPORT_ADDRESS}>"
''')
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ingest_slice(binary: str, config: str, maildir: str) -> dict:
    cpu0, start = children_cpu(), time.monotonic()
    proc = subprocess.run([binary, "--config", config, "ingest", maildir],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds, cpu = time.monotonic() - start, children_cpu() - cpu0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-10:])
        raise RuntimeError(f"ingest failed (exit {proc.returncode}):\n{tail}")
    counts = proc.stdout.strip().splitlines()[-1]
    return {"seconds": seconds, "cpu": cpu, "counts": counts}


def run(binary: str, rules: str, messages: int, slice_size: int, work: str, seed: int,
        progress=None, pairs: int = 3) -> dict:
    """Ingests the growth corpus slice by slice; returns the slices' figures.

    On a shared machine one slice may run while another job compiles, so the slices' times
    alone can mislead. After the run the first and the last slice are therefore ingested again
    `pairs` times, one after the other: the first into a new store, the last into a copy of
    the store as it was before the last slice. The ratio of their medians, measured side by
    side, is the figure to trust."""
    os.makedirs(work, exist_ok=True)
    config = write_config(work, rules)
    db = os.path.join(work, "mailrules.db")
    corpus = GrowthCorpus(seed)
    slices = []
    done = 0
    first_box = os.path.join(work, "first-slice")
    box = os.path.join(work, "slice")
    while done < messages:
        n = min(slice_size, messages - done)
        shutil.rmtree(box, ignore_errors=True)
        gen_corpus.write_maildir(box, (corpus.next() for _ in range(n)))
        if done == 0:
            shutil.copytree(box, first_box)
        if done + n >= messages and pairs:
            # The store closes with a checkpoint: the file alone is the whole store.
            shutil.copyfile(db, os.path.join(work, "before-last.db"))
        r = ingest_slice(binary, config, box)
        done += n
        r.update(first=done - n + 1, last=done, messages=n,
                 us_per_msg=r["seconds"] / n * 1e6, cpu_us_per_msg=r["cpu"] / n * 1e6,
                 store_mib=(os.path.getsize(db) + wal_size(db)) / 1048576)
        slices.append(r)
        if progress:
            progress(f"growth: messages {r['first']:,}-{r['last']:,}: {r['seconds']:.2f} s "
                     f"({r['us_per_msg']:.0f} µs/msg, {r['cpu_us_per_msg']:.0f} µs CPU/msg); "
                     f"{r['counts']}")
    first, last = slices[0], slices[-1]
    result = {"messages": messages, "slice": slice_size, "slices": slices,
              "ratio": last["us_per_msg"] / first["us_per_msg"],
              "cpu_ratio": last["cpu_us_per_msg"] / first["cpu_us_per_msg"]}
    if pairs and len(slices) > 1:
        result["paired"] = paired(binary, rules, work, first_box, box, first["messages"],
                                  last["messages"], pairs, progress)
    shutil.rmtree(box, ignore_errors=True)
    shutil.rmtree(first_box, ignore_errors=True)
    return result


def paired(binary, rules, work, first_box, last_box, first_n, last_n, pairs, progress) -> dict:
    """The first slice into a new store and the last into the store before it, alternately."""
    firsts, lasts = [], []
    for i in range(pairs):
        for box, n, into, times in ((first_box, first_n, None, firsts),
                                    (last_box, last_n, "before-last.db", lasts)):
            run_dir = os.path.join(work, "pair")
            shutil.rmtree(run_dir, ignore_errors=True)
            os.makedirs(run_dir)
            config = write_config(run_dir, rules)
            if into:
                shutil.copyfile(os.path.join(work, into), os.path.join(run_dir, "mailrules.db"))
            # The copy (1 GiB at 200,000 messages) and the removed run's files are written
            # back by the kernel at its own pace: done here, not during the timed slice.
            os.sync()
            r = ingest_slice(binary, config, box)
            times.append((r["seconds"] / n * 1e6, r["cpu"] / n * 1e6))
        if progress:
            progress(f"growth, pair {i + 1}: first slice {firsts[-1][0]:.0f} µs/msg "
                     f"({firsts[-1][1]:.0f} CPU), last slice {lasts[-1][0]:.0f} µs/msg "
                     f"({lasts[-1][1]:.0f} CPU)")
    shutil.rmtree(os.path.join(work, "pair"), ignore_errors=True)
    os.remove(os.path.join(work, "before-last.db"))
    med = statistics.median
    out = {"pairs": pairs,
           "first_us": med(t[0] for t in firsts), "first_cpu_us": med(t[1] for t in firsts),
           "last_us": med(t[0] for t in lasts), "last_cpu_us": med(t[1] for t in lasts)}
    out["ratio"] = out["last_us"] / out["first_us"]
    out["cpu_ratio"] = out["last_cpu_us"] / out["first_cpu_us"]
    return out


def wal_size(db: str) -> int:
    try:
        return os.path.getsize(db + "-wal")
    except OSError:
        return 0


def table(result: dict) -> str:
    lines = [f"growth run: {result['messages']:,} messages into one store, "
             f"{result['slice']:,} per slice (shipped rules)", "",
             "| messages | wall | per message | CPU per message | store size | result |",
             "|---|---|---|---|---|---|"]
    for s in result["slices"]:
        lines.append(f"| {s['first']:,}-{s['last']:,} | {s['seconds']:.2f} s | "
                     f"{s['us_per_msg']:.0f} µs | {s['cpu_us_per_msg']:.0f} µs | "
                     f"{s['store_mib']:.0f} MiB | {s['counts']} |")
    lines += ["", f"last slice / first slice: {result['ratio']:.2f}× per message "
              f"({result['cpu_ratio']:.2f}× CPU)"]
    p = result.get("paired")
    if p:
        lines += [f"side by side ({p['pairs']} times each, alternately, medians): the first "
                  f"slice into a new store {p['first_us']:.0f} µs/msg ({p['first_cpu_us']:.0f} "
                  f"µs CPU), the last into the store of {result['messages'] - result['slices'][-1]['messages']:,} "
                  f"{p['last_us']:.0f} µs/msg ({p['last_cpu_us']:.0f} µs CPU): "
                  f"{p['ratio']:.2f}× ({p['cpu_ratio']:.2f}× CPU); goal ≤ 1.3×"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rules", required=True, help="the rules directory (the shipped rules/)")
    ap.add_argument("--messages", type=int, default=200000)
    ap.add_argument("--slice", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", help="work directory (default: a new temp dir, removed at the end)")
    ap.add_argument("--pairs", type=int, default=3,
                    help="how many times the first and last slice are run again side by side")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="mailrules-growth-")
    try:
        result = run(os.path.abspath(args.binary), args.rules, args.messages, args.slice, work,
                     args.seed, progress=lambda t: print(t, file=sys.stderr, flush=True),
                     pairs=args.pairs)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else table(result))


if __name__ == "__main__":
    main()
