#!/usr/bin/env python3
"""The Python baseline: what a user would write by hand to do mailrules' file-ingest work.

Standard library only (`email`, `re`, `sqlite3`, `tomllib`). It reads the same rule files
(the subset the benchmark rules use: from/subject/body/header/thread/sender/any/all/not
conditions; after/between/regex/line/header extractors with types; create_task, comment, set,
analytics, reply and ignore actions; analytics triggers), threads replies by
In-Reply-To/References and by the [#N] subject tag, and writes tasks, fields, comments,
analytics rows, queued replies and the processed-message record into SQLite, exactly once by
Message-ID. Like a hand-written script it commits once per message, with SQLite's defaults;
`--batch N` instead commits every N messages in WAL mode (what a careful user might do), to
show how much of its time is the per-message commit.

    baseline.py --rules DIR --db FILE [--staff-domain acme.example] [--batch N] PATH...
"""

import argparse
import email
import email.policy
import email.utils
import fnmatch
import hashlib
import html
import json
import mailbox
import os
import re
import sqlite3
import time
import tomllib
from datetime import datetime, timezone

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, title TEXT, description TEXT,
    status TEXT, requester TEXT, assignee TEXT, parent INTEGER, created_at TEXT, updated_at TEXT);
CREATE TABLE IF NOT EXISTS fields (task_id INTEGER, name TEXT, value TEXT,
    PRIMARY KEY (task_id, name));
CREATE INDEX IF NOT EXISTS fields_by_value ON fields (name, value);
CREATE TABLE IF NOT EXISTS comments (id INTEGER PRIMARY KEY, task_id INTEGER, author TEXT,
    text TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS analytics (id INTEGER PRIMARY KEY, name TEXT, task_id INTEGER,
    row_values TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS contacts (address TEXT PRIMARY KEY, name TEXT);
CREATE TABLE IF NOT EXISTS messages (message_id TEXT PRIMARY KEY, task_id INTEGER, rule TEXT,
    status TEXT, error TEXT, raw BLOB, at TEXT);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, task_id INTEGER, recipient TEXT,
    subject TEXT, body TEXT, at TEXT);
"""

TAG = re.compile(r"\[#(\d+)\]")
VAR = re.compile(r"\{(\w+)\}")
TAGS = re.compile(r"<[^>]+>")
BLOCK_END = re.compile(r"</(p|div|tr|h\d|li)>|<br\s*/?>", re.I)
CELL_END = re.compile(r"</t[dh]>", re.I)
FORWARD_FROM = re.compile(r"^-+ ?Forwarded message ?-+\s*\nFrom: .*?<([^>]+)>", re.M)
QUOTE_START = re.compile(r"^(-----Original Message-----|On .* wrote:|.* пишет:)$", re.M)


class ActionFailed(Exception):
    pass


# ---- rules ---------------------------------------------------------------------------------

def compile_value(value, address=False):
    """A condition value → a predicate on a string."""
    if isinstance(value, bool):
        return lambda s: s == value
    if isinstance(value, str):
        if address:
            pattern = re.compile(fnmatch.translate(value.lower()))
            return lambda s: s is not None and pattern.match(s.lower()) is not None
        want = value.casefold()
        return lambda s: s is not None and s.casefold() == want
    if "regex" in value:
        rx = re.compile(value["regex"])
        return ("regex", rx)
    if "contains" in value:
        needle = value["contains"].casefold()
        return lambda s: s is not None and needle in s.casefold()
    if "is" in value:
        want = value["is"].casefold()
        return lambda s: s is not None and s.casefold() == want
    if "any" in value:
        options = {v.casefold() for v in value["any"]}
        return lambda s: s is not None and s.casefold() in options
    if "exists" in value:
        want = bool(value["exists"])
        return lambda s: (s is not None) == want
    raise ValueError(f"unsupported condition {value!r}")


def compile_when(when):
    """A `when` table → a function (message facts) → dict of captured groups, or None."""
    tests = []
    for key, value in when.items():
        if key in ("any", "all"):
            subs = [compile_when(w) for w in value]
            tests.append((key, subs))
        elif key == "not":
            tests.append(("not", compile_when(value)))
        elif key == "header":
            for name, cond in value.items():
                tests.append(("header:" + name.lower(), compile_value(cond)))
        else:
            tests.append((key, compile_value(value, address=key in ("from", "to"))))

    def check(facts):
        captured = {}
        for key, test in tests:
            if key == "any":
                for sub in test:
                    got = sub(facts)
                    if got is not None:
                        captured.update(got)
                        break
                else:
                    return None
            elif key == "all":
                for sub in test:
                    got = sub(facts)
                    if got is None:
                        return None
                    captured.update(got)
            elif key == "not":
                if test(facts) is not None:
                    return None
            else:
                value = facts.get(key)
                if isinstance(test, tuple):
                    m = test[1].search(value) if value is not None else None
                    if m is None:
                        return None
                    captured.update({k: v for k, v in m.groupdict().items() if v is not None})
                elif key == "to":
                    if not any(test(a) for a in value):
                        return None
                elif not test(value):
                    return None
        return captured

    return check


def compile_extractor(spec):
    source = spec.get("from", "body")
    if "after" in spec:
        label = spec["after"]

        def get(text):
            for line in text.splitlines():
                i = line.find(label)
                if i >= 0:
                    return line[i + len(label):].strip()
            return None
    elif "between" in spec:
        start, end = spec["between"]

        def get(text):
            i = text.find(start)
            if i < 0:
                return None
            j = text.find(end, i + len(start))
            return (text[i + len(start):j] if j >= 0 else text[i + len(start):]).strip()
    elif "regex" in spec:
        rx = re.compile(spec["regex"])

        def get(text):
            m = rx.search(text)
            if not m:
                return None
            if "value" in rx.groupindex:
                return m.group("value")
            return m.group(1) if rx.groups else m.group(0)
    elif "line" in spec:
        n = spec["line"]

        def get(text):
            lines = text.splitlines()
            return lines[n - 1].strip() if len(lines) >= n else None
    else:
        header = spec["header"].lower()
        source = "header:" + header

        def get(text):
            return text
    mapping = {k.casefold(): v for k, v in spec.get("map", {}).items()}
    kind = spec.get("type", "text")

    def extract(facts):
        text = facts.get(source)
        value = get(text) if text is not None else None
        if value is not None and mapping:
            value = mapping.get(value.casefold())
        if value is None or value == "":
            if "default" in spec:
                return spec["default"]
            if spec.get("required"):
                raise LookupError
            return ""
        return convert(value, kind)

    return extract


def convert(value, kind):
    if kind == "number":
        return str(float(value.replace(" ", "").replace(",", ".")) if "." in value or "," in value
                   else int(value.replace(" ", "")))
    if kind == "date":
        for fmt in ("%d.%m.%Y", "%Y-%m-%d"):
            try:
                return datetime.strptime(value, fmt).date().isoformat()
            except ValueError:
                pass
        return email.utils.parsedate_to_datetime(value).date().isoformat()
    if kind == "email":
        if "@" not in value:
            raise ActionFailed(f"not an email address: {value}")
        return value.strip().lower()
    return value


def load_rules(directory):
    rules, triggers, fields = [], [], {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".toml"):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            data = tomllib.load(f)
        for field in data.get("field", []):
            fields[field["name"]] = field
        for i, rule in enumerate(data.get("rule", [])):
            rules.append({
                "name": rule["name"],
                "order": (-rule.get("priority", 0), len(rules)),
                "when": compile_when(rule.get("when", {})),
                "extract": {k: compile_extractor(v) for k, v in rule.get("extract", {}).items()},
                "do": rule.get("do", []),
                "continue": rule.get("continue", False),
            })
        for trig in data.get("trigger", []):
            triggers.append({"on": trig["on"], "table": trig.get("table"),
                             "when": compile_when(trig.get("when", {})), "do": trig["do"]})
    rules.sort(key=lambda r: r["order"])
    return rules, triggers, fields


# ---- messages ------------------------------------------------------------------------------

def html_to_text(markup):
    markup = CELL_END.sub(" ", markup)
    markup = BLOCK_END.sub("\n", markup)
    return html.unescape(TAGS.sub("", markup))


def message_facts(msg, staff_domain):
    subject = str(msg.get("Subject", "") or "")
    name, addr = email.utils.parseaddr(str(msg.get("From", "")))
    body_part = msg.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        try:
            body = body_part.get_content()
        except (LookupError, UnicodeError):
            body = body_part.get_payload(decode=True).decode("utf-8", "replace")
        if body_part.get_content_type() == "text/html":
            body = html_to_text(body)
    has_attachment = any(True for _ in msg.iter_attachments())
    sender = addr.lower()
    if sender.endswith("@" + staff_domain):
        fwd = FORWARD_FROM.search(body)
        if fwd:
            sender = fwd.group(1).lower()
    recipients = [a.lower() for _, a in email.utils.getaddresses(
        [str(v) for k in ("To", "Cc", "Delivered-To", "X-Original-To") for v in msg.get_all(k, [])])]
    facts = {
        "subject": subject, "body": body, "from": sender, "from_name": name, "to": recipients,
        "has_attachment": has_attachment,
        "sender": "staff" if sender.endswith("@" + staff_domain) else "contact",
        "message_id": (msg.get("Message-ID") or "").strip(),
        "date": str(msg.get("Date", "")),
    }
    for key in msg.keys():
        facts["header:" + key.lower()] = str(msg.get(key))
    return facts


def strip_quote(body):
    m = QUOTE_START.search(body)
    text = body[:m.start()] if m else body
    return "\n".join(line for line in text.splitlines() if not line.startswith(">")).strip()


# ---- the store -----------------------------------------------------------------------------

class Store:
    def __init__(self, path, batch):
        if batch > 1:
            # Transactions are managed by hand: SAVEPOINT per message, COMMIT every `batch`.
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
        else:
            self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)
        self.db.commit()

    def thread(self, msg, subject):
        refs = (msg.get("References", "") or "") + " " + (msg.get("In-Reply-To", "") or "")
        ids = re.findall(r"<[^>]+>", refs)
        for mid in reversed(ids):
            row = self.db.execute("SELECT task_id FROM messages WHERE message_id = ? AND task_id "
                                  "IS NOT NULL", (mid,)).fetchone()
            if row:
                return row[0]
        tag = TAG.search(subject)
        if tag and self.db.execute("SELECT 1 FROM tasks WHERE id = ?",
                                   (int(tag.group(1)),)).fetchone():
            return int(tag.group(1))
        return None

    def find_task(self, target, variables, thread_task, earlier):
        if isinstance(target, dict):
            value = render(target["is"], variables)
            row = self.db.execute(
                "SELECT t.id FROM fields f JOIN tasks t ON t.id = f.task_id WHERE f.name = ? "
                "AND f.value = ? ORDER BY t.updated_at DESC, t.id DESC LIMIT 1",
                (target["field"], value)).fetchone()
            return row[0] if row else None
        if isinstance(target, str):
            number = render(target, variables)
            if number.isdigit() and self.db.execute("SELECT 1 FROM tasks WHERE id = ?",
                                                    (int(number),)).fetchone():
                return int(number)
            return None
        return thread_task if thread_task is not None else earlier


def render(template, variables):
    return VAR.sub(lambda m: str(variables.get(m.group(1), "")), template)


class Baseline:
    def __init__(self, rules_dir, db_path, staff_domain, batch=1):
        self.rules, self.triggers, self.fields = load_rules(rules_dir)
        self.store = Store(db_path, batch)
        self.batch = batch
        self.pending = 0
        self.staff_domain = staff_domain
        self.counts = {"processed": 0, "duplicates": 0, "failed": 0}

    def process(self, raw):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        mid = (msg.get("Message-ID") or "").strip() or \
            "sha256:" + hashlib.sha256(raw).hexdigest()
        db = self.store.db
        if db.execute("SELECT 1 FROM messages WHERE message_id = ?", (mid,)).fetchone():
            self.counts["duplicates"] += 1
            return
        now = datetime.now(timezone.utc).isoformat()
        try:
            with self.transaction():
                facts = message_facts(msg, self.staff_domain)
                thread_task = self.store.thread(msg, facts["subject"])
                facts["thread"] = "reply" if thread_task is not None else "new"
                db.execute("INSERT OR IGNORE INTO contacts (address, name) VALUES (?, ?)",
                           (facts["from"], facts["from_name"]))
                rule, task = self.apply_rules(facts, thread_task, now)
                db.execute("INSERT INTO messages (message_id, task_id, rule, status, at) "
                           "VALUES (?, ?, ?, 'applied', ?)", (mid, task, rule, now))
            self.counts["processed"] += 1
        except (ActionFailed, ValueError, LookupError) as e:
            with self.transaction():
                db.execute("INSERT INTO messages (message_id, status, error, raw, at) "
                           "VALUES (?, 'failed', ?, ?, ?)", (mid, str(e), raw, now))
            self.counts["failed"] += 1

    def transaction(self):
        """One transaction per message; with batching, a savepoint inside a longer one."""
        return self.store.db if self.batch <= 1 else Savepoint(self)

    def finish(self):
        if self.batch > 1 and self.store.db.in_transaction:
            self.store.db.execute("COMMIT")

    def apply_rules(self, facts, thread_task, now):
        for rule in self.rules:
            captured = rule["when"](facts)
            if captured is None:
                continue
            variables = {k: facts[k] for k in ("subject", "body", "from", "from_name",
                                               "message_id", "date")}
            variables["task"] = thread_task if thread_task is not None else ""
            variables["rule"] = rule["name"]
            try:
                for name, extract in rule["extract"].items():
                    variables[name] = extract(facts)
            except LookupError:
                continue  # a required value is missing: try the next rule
            variables.update(captured)
            task = self.run_actions(rule["do"], variables, facts, thread_task, now)
            if not rule["continue"]:
                return rule["name"], task
        # No rule matched: unmatched = "thread".
        if thread_task is not None:
            self.comment(thread_task, facts["from"], strip_quote(facts["body"]), now)
            return None, thread_task
        return None, self.create_task(facts["subject"], facts["body"], None, facts["from"],
                                      None, None, {}, now)

    def run_actions(self, actions, variables, facts, thread_task, now, depth=0):
        db = self.store.db
        last = thread_task  # the task later actions act on by default
        for action in actions:
            kind = action["action"]
            if kind == "ignore":
                continue
            if kind == "create_task":
                fields = {k: render(v, variables) for k, v in action.get("fields", {}).items()}
                parent = render(action["parent"], variables) if "parent" in action else None
                last = self.create_task(
                    render(action.get("title", "{subject}"), variables),
                    render(action.get("description", "{body}"), variables),
                    render(action.get("status", ""), variables) or None,
                    facts.get("from"), render(action.get("assignee", ""), variables) or None,
                    int(parent) if parent else None, fields, now)
                variables["task"] = last
                continue
            task = self.store.find_task(action.get("task"), variables, thread_task, last)
            if task is None:
                missing = action.get("if_missing", "fail")
                if missing == "skip":
                    continue
                if missing == "create":
                    target = action.get("task")
                    found_by = {target["field"]: render(target["is"], variables)} \
                        if isinstance(target, dict) else {}
                    task = self.create_task(facts["subject"], facts["body"], None, facts["from"],
                                            None, None, found_by, now)
                else:
                    raise ActionFailed(f"{kind}: no task")
            last = task
            variables["task"] = task
            if kind == "comment":
                text = render(action["text"], variables) if "text" in action else \
                    strip_quote(facts["body"])
                self.comment(task, facts["from"], text, now)
            elif kind == "set":
                if "status" in action:
                    db.execute("UPDATE tasks SET status = ?, updated_at = ? WHERE id = ?",
                               (render(action["status"], variables), now, task))
                for name, template in action.get("fields", {}).items():
                    self.set_field(task, name, render(template, variables))
            elif kind == "analytics":
                values = {k: render(v, variables) for k, v in action["values"].items()}
                db.execute("INSERT INTO analytics (name, task_id, row_values, at) VALUES (?, ?, ?, ?)",
                           (action["table"], task, json.dumps(values, ensure_ascii=False), now))
                self.fire_analytics(action["table"], values, task, facts, now, depth)
            elif kind in ("reply", "notify"):
                if kind == "reply" and self.auto_sender(facts):
                    continue
                to = facts["from"] if kind == "reply" else render(action["to"], variables)
                db.execute("INSERT INTO outbox (task_id, recipient, subject, body, at) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (task, to, render(action.get("subject", "Re: {subject}"), variables),
                            render(action.get("text", ""), variables), now))
        return last

    def fire_analytics(self, table, values, task, facts, now, depth):
        if depth >= 8:
            raise ActionFailed("trigger depth exceeded")
        for trig in self.triggers:
            if trig["on"] != "analytics" or trig["table"] != table:
                continue
            row_facts = dict(values)
            if trig["when"](row_facts) is None:
                continue
            variables = dict(values)
            variables.update(task=task, row="\n".join(f"{k}: {v}" for k, v in values.items()),
                             subject=facts["subject"], body=facts["body"], **{"from": facts["from"]})
            self.run_actions(trig["do"], variables, facts, task, now, depth + 1)

    @staticmethod
    def auto_sender(facts):
        auto = facts.get("header:auto-submitted", "no").lower() != "no"
        bulk = facts.get("header:precedence", "").lower() in ("bulk", "list", "junk")
        return auto or bulk or "header:list-unsubscribe" in facts

    def create_task(self, title, description, status, requester, assignee, parent, fields, now):
        cur = self.store.db.execute(
            "INSERT INTO tasks (title, description, status, requester, assignee, parent, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (title, description, status or "Новая", requester, assignee, parent, now, now))
        for name, value in fields.items():
            self.set_field(cur.lastrowid, name, value)
        return cur.lastrowid

    def set_field(self, task, name, value):
        field = self.fields.get(name)
        if field and field.get("type") == "choice" and value and value not in field["values"]:
            raise ActionFailed(f"{name}: {value!r} is not one of the choices")
        self.store.db.execute("INSERT OR REPLACE INTO fields (task_id, name, value) VALUES (?, ?, ?)",
                              (task, name, value))

    def comment(self, task, author, text, now):
        self.store.db.execute("INSERT INTO comments (task_id, author, text, at) VALUES (?, ?, ?, ?)",
                              (task, author, text, now))
        self.store.db.execute("UPDATE tasks SET updated_at = ? WHERE id = ?", (now, task))


class Savepoint:
    def __init__(self, baseline):
        self.baseline = baseline

    def __enter__(self):
        db = self.baseline.store.db
        if not db.in_transaction:
            db.execute("BEGIN")
        db.execute("SAVEPOINT message")

    def __exit__(self, kind, value, traceback):
        db = self.baseline.store.db
        if kind is not None:
            db.execute("ROLLBACK TO message")
            db.execute("RELEASE message")
            return False
        db.execute("RELEASE message")
        self.baseline.pending += 1
        if self.baseline.pending >= self.baseline.batch:
            db.execute("COMMIT")
            self.baseline.pending = 0
        return False


def messages_from(paths):
    for path in paths:
        if os.path.isdir(path):
            subdirs = [os.path.join(path, d) for d in ("new", "cur") if os.path.isdir(os.path.join(path, d))]
            files = []
            for d in subdirs or [path]:
                files += [os.path.join(d, n) for n in os.listdir(d) if not n.startswith(".")]
            for f in sorted(files, key=os.path.basename):
                with open(f, "rb") as fh:
                    yield fh.read()
        else:
            for msg in mailbox.mbox(path):
                yield msg.as_bytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--staff-domain", default="acme.example")
    ap.add_argument("--batch", type=int, default=1, help="messages per commit (default 1)")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    baseline = Baseline(args.rules, args.db, args.staff_domain, args.batch)
    start = time.monotonic()
    for raw in messages_from(args.paths):
        baseline.process(raw)
    baseline.finish()
    elapsed = time.monotonic() - start
    c = baseline.counts
    print(f"processed {c['processed']}, duplicates {c['duplicates']}, failed {c['failed']} "
          f"in {elapsed:.2f}s")


if __name__ == "__main__":
    main()
