#!/usr/bin/env python3
"""Runs the whole benchmark and prints one Markdown table (what `scripts/bench` calls).

Generates the corpus once into a work directory, then measures file ingest with 10, 100 and
1,000 rules (a fresh store each run; median of 3 runs when a run is short enough), the same
with 100 rules on a second corpus of another mix (`gen_corpus.py --mix heavy`, another seed),
the Python baseline on both corpora, peak RSS on a mailbox holding a 25 MiB attachment, and the IMAP
figures (raw fetch, daemon ingest, APPEND → committed latency) from a private Dovecot, and
the growth run (`growth.py`: 200,000 messages into one store, the time per message of each
20,000).

    run.py --binary target/release/mailrules --shipped rules [--quick] [--work DIR] [--out FILE]
           [--no-imap] [--no-cyrus] [--no-growth] [--growth]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import growth  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

FULL = {"messages": 20000, "imap": 5000, "latency": 200, "rss_messages": 500, "runs": 3,
        "growth": 200000, "growth_slice": 20000}
QUICK = {"messages": 2000, "imap": 1000, "latency": 50, "rss_messages": 100, "runs": 1,
         "growth": 20000, "growth_slice": 2000}
BIG_MIB = 25
# A run longer than this is not repeated for the median (keeps the whole run under 10 min).
REPEAT_UNDER_SECONDS = 20


def step(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def python(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, os.path.join(HERE, script), *args], check=True,
                         stdout=subprocess.PIPE, text=True)
    return out.stdout.strip()


def write_config(directory: str, rules: str, extra: str = "") -> str:
    """A config for ingest benchmarks; `extra`: top-level lines put first."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "mailrules.toml")
    with open(path, "w") as f:
        f.write(f'''{extra}store = "mailrules.db"
rules = "{rules}"

[staff]
domains = ["acme.example"]

[smtp]
host = "127.0.0.1"
port = 9
tls = "none"
from = "Поддержка ACME <support@acme.example>"
''')
    return path


def timed_ingest(binary: str, config: str, source: str) -> dict:
    """One `mailrules ingest` under /usr/bin/time -v: wall time, counts, peak RSS."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-v", binary, "--config", config, "ingest", source],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    counts = re.search(r"processed (\d+), duplicates (\d+), failed (\d+)", proc.stdout)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)",
                                           proc.stderr))
    if proc.returncode not in (0,) or not counts:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"ingest failed (exit {proc.returncode}):\n{proc.stdout[-500:]}\n{tail}")
    processed, duplicates, failed = (int(x) for x in counts.groups())
    errors = [line for line in proc.stderr.splitlines() if line.startswith("failed:")]
    return {"seconds": elapsed, "processed": processed, "duplicates": duplicates,
            "failed": failed, "rss_kib": int(rss.group(1)) if rss else None, "cpu": cpu,
            "first_errors": errors[:3]}


def file_ingest(binary: str, rules: str, corpus: str, work: str, runs: int) -> dict:
    results = []
    for i in range(runs):
        config = write_config(os.path.join(work, f"run{i}"), rules)
        results.append(timed_ingest(binary, config, corpus))
        if results[-1]["seconds"] > REPEAT_UNDER_SECONDS:
            break
    median = statistics.median(r["seconds"] for r in results)
    last = results[-1]
    return dict(last, seconds=median, runs=len(results),
                cpu=statistics.median(r["cpu"] for r in results),
                all_seconds=[round(r["seconds"], 3) for r in results])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def memory_gib() -> float:
    with open("/proc/meminfo") as f:
        kib = int(f.readline().split()[1])
    return kib / 1024 / 1024


def latency_rows(server: str, result: dict) -> list:
    """APPEND → committed, what mailrules adds over the server's own IDLE notice (sample by
    sample, from the daemon's log), and that notice alone."""
    rows = []
    lat = result.get("latency")
    if not lat or "error" in lat:
        why = (lat or {}).get("error") or result.get("error") or "daemon ingest did not complete"
        return [(f"APPEND → committed with IDLE, {server}", "n/a", why, "",
                 "median < 20 ms, p99 < 200 ms")]
    rows.append((f"APPEND → committed with IDLE, {server}, {lat['samples']} msgs",
                 f"median {lat['median_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms",
                 f"max {lat['max_ms']:.1f} ms", "", "median < 20 ms, p99 < 200 ms"))
    added = lat.get("added")
    if added and "error" not in added:
        rows.append((f"… of it added by mailrules over the server's `* N EXISTS`, {server}",
                     f"median {added['median_ms']:.1f} ms, p99 {added['p99_ms']:.1f} ms",
                     f"max {added['max_ms']:.1f} ms; each sample from the daemon's log: its IDLE "
                     "wake-up to the message's commit", "", "p99 ≤ 10 ms"))
    idle = result.get("idle_notify")
    if idle:
        rows.append((f"APPEND → `* N EXISTS` to a plain idling client, {server}, "
                     f"{idle['samples']} msgs",
                     f"median {idle['median_ms']:.1f} ms, p99 {idle['p99_ms']:.1f} ms",
                     f"max {idle['max_ms']:.1f} ms; the server's own delay, the floor of "
                     "APPEND → committed", f"ours − this: {lat['median_ms'] - idle['median_ms']:+.1f} ms "
                     "(medians)", ""))
    return rows


def imap_rows(imap: dict) -> list:
    rows = []
    raw = imap.get("raw_fetch")
    daemon = imap.get("daemon", {})
    same = imap.get("file_ingest", {})
    if raw:
        rows.append((f"IMAP raw `UID FETCH 1:* BODY.PEEK[]`, {raw['messages']:,} msgs (imaplib)",
                     fmt_rate(raw["per_second"]), f"{raw['seconds']:.2f} s, "
                     f"{raw['bytes'] / 1048576:.1f} MiB", "", ""))
    if same and "error" not in same:
        rows.append((f"file ingest of the same {same['messages']:,} msgs, 100 rules",
                     fmt_rate(same["per_second"]), f"{same['seconds']:.2f} s from start to exit",
                     "", ""))
    if daemon and "error" not in daemon and raw:
        ratio = f"{daemon['per_second'] / raw['per_second']:.0%} of raw fetch"
        if same and "error" not in same:
            ratio += f", {daemon['per_second'] / same['per_second']:.0%} of file ingest"
        rows.append((f"IMAP ingest, `mailrules run`, {daemon['messages']:,} msgs, 100 rules",
                     fmt_rate(daemon["per_second"]), f"{daemon['seconds']:.2f} s from start "
                     "to last commit", ratio, "≥ 70% of raw fetch"))
    else:
        rows.append(("IMAP ingest, `mailrules run`", "n/a",
                     daemon.get("error") or imap.get("error", "not run"), "", "≥ 70% of raw fetch"))
    rows += latency_rows("Dovecot", imap)
    if "cyrus" in imap:
        rows += latency_rows("Cyrus", imap["cyrus"])
    return rows


def fmt_rate(x: float) -> str:
    return f"{x:,.0f} msg/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--shipped", required=True, help="the project's rules/ directory")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", help="work directory (default: a new temp dir, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the temp work directory")
    ap.add_argument("--out", help="also write the table to this file")
    ap.add_argument("--no-imap", action="store_true")
    ap.add_argument("--no-cyrus", action="store_true",
                    help="leave out the Cyrus latency rows (they need root and the unpacked "
                         "cyrus-imapd of scripts/test)")
    ap.add_argument("--no-growth", action="store_true", help="leave out the growth run")
    ap.add_argument("--growth", action="store_true",
                    help="only the growth run (200,000 messages into one store; 20,000 with --quick)")
    args = ap.parse_args()
    size = QUICK if args.quick else FULL
    binary = os.path.abspath(args.binary)
    work = args.work or tempfile.mkdtemp(prefix="mailrules-bench-")
    os.makedirs(work, exist_ok=True)
    # Dovecot's unprivileged processes must reach its config and mail below here.
    os.chmod(work, 0o755)
    try:
        if args.growth:
            run_growth_only(args, size, binary, work)
        else:
            run(args, size, binary, work)
    finally:
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def growth_run(args, size: dict, binary: str, work: str) -> dict:
    step(f"growth run: {size['growth']:,} messages into one store, "
         f"{size['growth_slice']:,} per slice")
    return growth.run(binary, args.shipped, size["growth"], size["growth_slice"],
                      os.path.join(work, "growth"), seed=7, progress=step)


def growth_row(result: dict) -> tuple:
    last = result["slices"][-1]
    p = result["paired"]
    return (f"growth: {result['messages']:,} msgs into one store, shipped rules, "
            f"last {result['slice']:,} vs first",
            f"{p['last_us']:.0f} vs {p['first_us']:.0f} µs/msg",
            f"CPU {p['last_cpu_us']:.0f} vs {p['first_cpu_us']:.0f} µs/msg, medians of "
            f"{p['pairs']} side by side; store {last['store_mib']:.0f} MiB; every slice below",
            f"{p['ratio']:.2f}× ({p['cpu_ratio']:.2f}× CPU)", "≤ 1.3×")


def run_growth_only(args, size: dict, binary: str, work: str) -> None:
    began = time.monotonic()
    load_before = load_average()
    result = growth_run(args, size, binary, work)
    lines = [f"mailrules growth run ({'quick' if args.quick else 'full'})",
             f"machine: {os.cpu_count()} CPUs, {cpu_model()}, {memory_gib():.1f} GiB RAM; "
             f"1-minute load average {load_before} at start, {load_average()} at end", "",
             growth.table(result), "", f"whole run: {time.monotonic() - began:.0f} s"]
    emit(args, "\n".join(lines))


def emit(args, table: str) -> None:
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def run(args, size: dict, binary: str, work: str) -> None:
    began = time.monotonic()
    load_before = load_average()

    step(f"work directory {work}")
    corpus = os.path.join(work, "corpus")
    step(f"generating {size['messages']} messages")
    corpus_info = python("gen_corpus.py", "--count", str(size["messages"]), "--out", corpus,
                         "--seed", "1")
    # Issue 18's second corpus: generated independently (another seed) with another mix: more
    # HTML mail, long threads, more attachments, busy robot senders.
    heavy = os.path.join(work, "corpus-heavy")
    step(f"generating {size['messages']} messages of the heavy mix")
    heavy_info = python("gen_corpus.py", "--count", str(size["messages"]), "--out", heavy,
                        "--seed", "4", "--mix", "heavy")
    latency_box = os.path.join(work, "latency")
    python("gen_corpus.py", "--count", str(size["latency"]), "--out", latency_box, "--seed", "2")
    big_box = os.path.join(work, "big")
    python("gen_corpus.py", "--count", str(size["rss_messages"]), "--out", big_box, "--seed", "3",
           "--big-mb", str(BIG_MIB))
    rules = {}
    for n in (10, 100, 1000):
        rules[n] = os.path.join(work, f"rules{n}")
        python("gen_rules.py", "--count", str(n), "--out", rules[n], "--shipped", args.shipped)

    ingest = {}
    for n in (10, 100, 1000):
        step(f"file ingest, {n} rules")
        ingest[n] = file_ingest(binary, rules[n], corpus, os.path.join(work, f"ingest{n}"),
                                size["runs"])
        step(f"  {ingest[n]['all_seconds']} s, failed {ingest[n]['failed']}")

    step("file ingest, heavy mix, 100 rules")
    heavy_ingest = file_ingest(binary, rules[100], heavy, os.path.join(work, "ingest-heavy"),
                               size["runs"])
    step(f"  {heavy_ingest['all_seconds']} s, failed {heavy_ingest['failed']}")

    baseline = {}
    for batch, source, name in ((1, corpus, 1), (500, corpus, 500), (1, heavy, "heavy")):
        step(f"Python baseline, 100 rules, {batch} message(s) per commit, "
             f"{'heavy' if source == heavy else 'project'} mix")
        base_dir = os.path.join(work, f"baseline{name}")
        os.makedirs(base_dir, exist_ok=True)
        start = time.monotonic()
        out = python("baseline.py", "--rules", rules[100], "--db",
                     os.path.join(base_dir, "baseline.db"), "--batch", str(batch), source)
        baseline[name] = (time.monotonic() - start, out.split(" in ")[0])
        step(f"  {out}")

    step(f"peak RSS, {size['rss_messages']} messages with one {BIG_MIB} MiB attachment")
    rss = timed_ingest(binary, write_config(os.path.join(work, "rss"), rules[100]), big_box)

    imap = None
    if not args.no_imap:
        step(f"IMAP: {size['imap']} messages in Dovecot, then {size['latency']} APPENDs")
        proc = subprocess.run(
            [sys.executable, os.path.join(HERE, "imap_bench.py"), "--binary", binary,
             "--rules", rules[100], "--maildir", corpus, "--count", str(size["imap"]),
             "--latency", str(size["latency"]), "--latency-maildir", latency_box,
             "--work", os.path.join(work, "imap")] + ([] if args.no_cyrus else ["--cyrus"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            imap = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            last = (proc.stderr.strip().splitlines() or [""])[-1]
            imap = {"error": f"imap_bench.py exited with {proc.returncode}: {last}"}
            sys.stderr.write(proc.stderr)

    grown = None if args.no_growth else growth_run(args, size, binary, work)

    n = size["messages"]
    rate = {k: n / v["seconds"] for k, v in ingest.items()}
    base_rate = n / baseline[1][0]
    batched_rate = n / baseline[500][0]
    rows = []

    def runs_note(r):
        return f"median of {r['runs']}" if r["runs"] > 1 else "1 run"

    for k in (10, 100, 1000):
        r = ingest[k]
        note = (f"{r['seconds']:.2f} s ({r['cpu']:.2f} s CPU), {runs_note(r)}; "
                f"processed {r['processed']}, failed {r['failed']}")
        ratio, goal = "", ""
        if k == 100:
            ratio = f"{rate[100] / base_rate:.1f}× baseline"
            goal = "≥ 20,000 msg/s and ≥ 55× baseline"
        if k == 1000:
            ratio = (f"{(1 / rate[1000]) / (1 / rate[10]):.2f}× the per-message time of 10 rules "
                     f"({ingest[1000]['cpu'] / ingest[10]['cpu']:.2f}× its CPU time)")
            goal = "≤ 3×"
        rows.append((f"file ingest, {n:,} msgs, {k:,} rules", fmt_rate(rate[k]), note, ratio, goal))
    heavy_rate = n / heavy_ingest["seconds"]
    heavy_base_rate = n / baseline["heavy"][0]
    r = heavy_ingest
    rows.append((f"file ingest, heavy mix, {n:,} msgs, 100 rules", fmt_rate(heavy_rate),
                 f"{r['seconds']:.2f} s ({r['cpu']:.2f} s CPU), {runs_note(r)}; "
                 f"processed {r['processed']}, failed {r['failed']}",
                 f"{heavy_rate / heavy_base_rate:.1f}× baseline (heavy mix)",
                 "≥ 20,000 msg/s and ≥ 55× baseline"))
    rows.append(("Python baseline (email+re+sqlite3), 100 rules, commit per message",
                 fmt_rate(base_rate), f"{baseline[1][0]:.1f} s, 1 run; {baseline[1][1]}", "", ""))
    rows.append(("Python baseline, heavy mix, 100 rules, commit per message",
                 fmt_rate(heavy_base_rate),
                 f"{baseline['heavy'][0]:.1f} s, 1 run; {baseline['heavy'][1]}", "", ""))
    rows.append(("Python baseline, 100 rules, 500 messages per commit (WAL)",
                 fmt_rate(batched_rate), f"{baseline[500][0]:.1f} s, 1 run; {baseline[500][1]}",
                 f"ours (100 rules) = {rate[100] / batched_rate:.1f}× this", ""))
    rows.append((f"peak RSS, {size['rss_messages']} msgs + one {BIG_MIB} MiB attachment",
                 f"{rss['rss_kib'] / 1024:.1f} MiB", f"{rss['seconds']:.2f} s, failed {rss['failed']}",
                 "", "< 64 MiB"))
    rows.append((f"peak RSS, file ingest of {n:,} msgs (100 rules)",
                 f"{ingest[100]['rss_kib'] / 1024:.1f} MiB", "", "", ""))
    if imap is not None:
        rows += imap_rows(imap)

    if grown:
        rows.append(growth_row(grown))

    lines = [
        f"mailrules benchmark ({'quick' if args.quick else 'full'} run), corpus: {corpus_info}; "
        f"heavy mix: {heavy_info}",
        f"machine: {os.cpu_count()} CPUs, {cpu_model()}, {memory_gib():.1f} GiB RAM; "
        f"1-minute load average {load_before} at start, {load_average()} at end",
        "",
        "| measure | figure | detail | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    errors = [e for k in ingest for e in ingest[k]["first_errors"]][:3]
    if errors:
        lines += ["", "first ingest failures: " + "; ".join(errors)]
    if grown:
        lines += ["", growth.table(grown)]
    lines += ["", f"whole run: {time.monotonic() - began:.0f} s"]
    emit(args, "\n".join(lines))


if __name__ == "__main__":
    main()
