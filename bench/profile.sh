#!/usr/bin/env bash
# Profiles file ingest with perf (software clock: this VM has no hardware counters) and prints
# the hottest functions, self time and with children. Usage:
#   bench/profile.sh BINARY RULES_DIR MAILDIR [OUT_DIR]
# RULES_DIR and MAILDIR come from bench/gen_rules.py and bench/gen_corpus.py.
set -euo pipefail
binary=$1 rules=$2 maildir=$3 out=${4:-$(mktemp -d)}
mkdir -p "$out"
cat > "$out/mailrules.toml" <<TOML
store = "mailrules.db"
rules = "$(realpath "$rules")"
[staff]
domains = ["acme.example"]
[smtp]
host = "127.0.0.1"
port = 9
tls = "none"
from = "Support <support@acme.example>"
TOML
rm -f "$out"/mailrules.db*
# Warm the page cache so the profile shows the program, not the disk.
cat "$maildir"/cur/* > /dev/null
# DWARF unwinding: the release build has no frame pointers but has debug info.
perf record -q -e cpu-clock -F 1000 --call-graph dwarf,16384 -o "$out/perf.data" \
    "$binary" --config "$out/mailrules.toml" ingest "$maildir" >/dev/null 2>&1
echo "== self time"
perf report -i "$out/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
    | grep "%" | head -30 || true
echo "== with children (the program's own functions, the parser, SQLite entry points)"
perf report -i "$out/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep '%' | grep -E 'mailrules::|mail_parser::|rusqlite::|regex|sqlite3_step|sqlite3Prepare|walCheckpoint' \
    | head -50 || true
echo "== hot leaves and the functions above them (SQLite time by the store function asking)"
perf script -i "$out/perf.data" 2>/dev/null | python3 "$(dirname "$0")/hotspots.py" --top 20
