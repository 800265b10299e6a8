#!/usr/bin/env bash
# Counts the instructions each thread of `mailrules ingest` executes (valgrind's callgrind):
# exact and repeatable where wall time on a shared machine is not. Usage:
#   bench/instructions.sh BINARY RULES_DIR MAILDIR [COUNT [OUT_DIR]]
# Ingests the first COUNT (default 3000) messages of MAILDIR (from bench/gen_corpus.py) with
# the rules of RULES_DIR (from bench/gen_rules.py) into a fresh store, and prints one line per
# thread; `callgrind_annotate --inclusive=yes OUT_DIR/callgrind.out-NN` shows where they went.
# EXTRA_CONFIG: top-level config lines to add (e.g. EXTRA_CONFIG='keep_mail = "failed"').
set -euo pipefail
binary=$(realpath "$1") rules=$(realpath "$2") maildir=$(realpath "$3") count=${4:-3000}
out=${5:-$(mktemp -d)}
command -v valgrind >/dev/null || { echo "bench/instructions.sh needs valgrind (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$out/subset/cur" "$out/subset/new" "$out/subset/tmp"
rm -f "$out"/subset/cur/* "$out"/mailrules.db* "$out"/callgrind.out*
mapfile -t files < <(find "$maildir/cur" -type f | sort)
for f in "${files[@]:0:$count}"; do
    ln -f "$f" "$out/subset/cur/" 2>/dev/null || cp "$f" "$out/subset/cur/"
done
cat > "$out/mailrules.toml" <<TOML
${EXTRA_CONFIG:-}
store = "mailrules.db"
rules = "$rules"
[staff]
domains = ["acme.example"]
[smtp]
host = "127.0.0.1"
port = 9
tls = "none"
from = "Support <support@acme.example>"
TOML
cd "$out"
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=callgrind.out \
    "$binary" --config mailrules.toml ingest subset 2>&1 | grep -E "processed|Collected" || true
# Thread 01 applies (it holds the store); the next ones prepare (one per core); the last reads
# the files (its work is mostly system calls, which callgrind does not count).
for f in callgrind.out-*; do
    printf '%s: %s instructions\n' "${f#callgrind.out-}" "$(grep -m1 -E '^(summary|totals):' "$f" | awk '{print $2}')"
done
