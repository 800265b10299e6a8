//! Hostile and oversized input, through the pipeline and the binary: nothing may panic, hang,
//! stall the other messages of a batch, or be lost (`processed + duplicates + failed` counts
//! every input, and a failed message keeps its bytes for `retry`). The inputs are generated
//! here, not committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::bounded::{self, HANG};
use crate::support::workdir::Workdir;
use mailrules::config::Config;
use mailrules::pipeline::{Incoming, OutcomeStatus, Pipeline};
use mailrules::rules::RuleSet;
use mailrules::store::Store;
use serde_json::Value;

/// A plain message with a unique Message-ID, `extra` headers and `body`.
fn message(id: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "From: Client <client@client.example>\r\nTo: support@acme.example\r\n\
         Subject: hostile {id}\r\nMessage-ID: <{id}@hostile.example>\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n{extra}\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `levels` multiparts, each inside the previous one, with a text part at the bottom.
fn deep_mime(id: &str, levels: usize) -> Vec<u8> {
    let mut body = String::new();
    for level in 0..levels {
        body.push_str(&format!(
            "--b{level}\r\nContent-Type: multipart/mixed; boundary=\"b{}\"\r\n\r\n",
            level + 1
        ));
    }
    body.push_str(&format!(
        "--b{levels}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nthe bottom\r\n--b{levels}--\r\n"
    ));
    for level in (0..levels).rev() {
        body.push_str(&format!("--b{level}--\r\n"));
    }
    message(
        id,
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n",
        body.as_bytes(),
    )
}

/// `levels` message/rfc822 parts, each one wrapping the next.
fn deep_rfc822(id: &str, levels: usize) -> Vec<u8> {
    let mut inner =
        b"From: inner@client.example\r\nSubject: innermost\r\n\r\nthe bottom\r\n".to_vec();
    for level in 0..levels {
        let mut outer = format!(
            "From: level{level}@client.example\r\nSubject: level {level}\r\n\
             MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
        )
        .into_bytes();
        outer.extend_from_slice(&inner);
        inner = outer;
    }
    message(
        id,
        "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n",
        &inner,
    )
}

/// Every hostile message, named for the assertion messages.
fn hostile_messages() -> Vec<(&'static str, Vec<u8>)> {
    let many_headers: String = (0..5000)
        .map(|i| format!("X-Filler-{i}: value {i}\r\n"))
        .collect();
    let recipients: Vec<String> = (0..10_000)
        .map(|i| format!("r{i}@client.example"))
        .collect();
    let to = format!("Cc: {}\r\n", recipients.join(",\r\n "));
    let long_subject = format!("Subject: {}\r\n", "тема ".repeat(100_000));
    let mut invalid_utf8 = b"X-Bad: \xff\xfe\xc3\x28 \xed\xa0\x80\r\n".to_vec();
    invalid_utf8.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    let mut nul = message(
        "nul",
        "X-Nul: a\0b\r\n",
        b"line one\0with a NUL\r\n\0\0\0\r\nend\r\n",
    );
    nul.extend_from_slice(&[0u8; 4096]);
    let html_nesting = format!(
        "<html><body>{}deep{}</body></html>",
        "<div><table><tr><td><blockquote>".repeat(20_000),
        "</blockquote></td></tr></table></div>".repeat(20_000)
    );
    let encoded_words = format!(
        "Subject: {}\r\n",
        "=?utf-8?B?0YLQtdC80LA=?= ".repeat(20_000)
    );
    vec![
        ("deep MIME nesting (200 levels)", deep_mime("deep-200", 200)),
        ("deep MIME nesting (5000 levels)", deep_mime("deep-5000", 5000)),
        (
            "nested message/rfc822 (200 levels)",
            deep_rfc822("rfc822-200", 200),
        ),
        (
            "5000 headers",
            message("headers", &many_headers, b"body\r\n"),
        ),
        (
            "10,000 recipients",
            message("recipients", &to, b"body\r\n"),
        ),
        (
            "a 1 MB subject line",
            long_subject
                .into_bytes()
                .into_iter()
                .chain(b"From: c@client.example\r\nMessage-ID: <subject@hostile.example>\r\n\r\nbody\r\n".iter().copied())
                .collect(),
        ),
        (
            "20,000 encoded words in the subject",
            encoded_words
                .into_bytes()
                .into_iter()
                .chain(b"From: c@client.example\r\nMessage-ID: <words@hostile.example>\r\n\r\nbody\r\n".iter().copied())
                .collect(),
        ),
        (
            "invalid UTF-8 under charset=utf-8",
            message(
                "utf8",
                std::str::from_utf8(b"MIME-Version: 1.0\r\n").unwrap(),
                &[invalid_utf8.as_slice(), b"\r\n\xff\xfe body \xc3\x28\r\n"].concat(),
            ),
        ),
        (
            "unknown charsets",
            message(
                "charset",
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n",
                b"=?x-unknown?Q?abc?= \xe0\xe1\xe2 text\r\n",
            ),
        ),
        ("NUL bytes", nul),
        (
            "a 2 MB body line without a newline",
            message("longline", "", "Причина: ".repeat(200_000).as_bytes()),
        ),
        (
            "HTML nested 100,000 tags deep",
            message(
                "html",
                "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
                html_nesting.as_bytes(),
            ),
        ),
        (
            "3000 attachments",
            message(
                "attachments",
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n",
                &(0..3000)
                    .map(|i| {
                        format!(
                            "--x\r\nContent-Type: application/octet-stream\r\n\
                             Content-Disposition: attachment; filename=\"f{i}.bin\"\r\n\r\n{i}\r\n"
                        )
                    })
                    .chain(std::iter::once("--x--\r\n".to_string()))
                    .collect::<String>()
                    .into_bytes(),
            ),
        ),
        (
            "headers only, no body, no final newline",
            b"From: c@client.example\r\nMessage-ID: <nobody@hostile.example>\r\nSubject: x".to_vec(),
        ),
        ("random bytes", (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect()),
        ("empty", Vec::new()),
    ]
}

fn write_messages(dir: &Path, messages: &[(&str, Vec<u8>)]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    messages
        .iter()
        .enumerate()
        .map(|(i, (_, raw))| {
            let path = dir.join(format!("{i:03}.eml"));
            std::fs::write(&path, raw).unwrap();
            path
        })
        .collect()
}

fn ingest_json(w: &Workdir, path: &Path) -> Value {
    let out = bounded::run(
        &mut w.command(&["ingest", path.to_str().unwrap(), "--json"]),
        b"",
        HANG,
    );
    assert!(
        out.status.success(),
        "ingest {}: {:?}\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn counted(result: &Value) -> u64 {
    ["processed", "duplicates", "failed"]
        .iter()
        .map(|k| result[k].as_u64().unwrap())
        .sum()
}

const THREAD_RULE: &str = r#"
[[rule]]
name = "every-message"
[rule.when]
body = { regex = '(?P<word>\w+)' }
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "create_task"
title = "{subject}"
fields = { "Причина" = "{reason}" }
"#;

#[test]
fn every_hostile_message_is_accounted_for_and_none_hangs_the_binary() {
    let w = Workdir::with_rules(&[("all.toml", THREAD_RULE)]);
    let hostile = hostile_messages();
    let dir = w.path("hostile");
    let paths = write_messages(&dir, &hostile);

    for ((name, _), path) in hostile.iter().zip(&paths) {
        let result = ingest_json(&w, path);
        assert_eq!(counted(&result), 1, "{name}: {result:#}");
        let status = result["messages"][0]["status"].as_str().unwrap();
        assert!(
            status == "applied" || status == "failed",
            "{name}: {status}"
        );

        let out = bounded::run(
            &mut w.command(&["explain", path.to_str().unwrap(), "--json"]),
            b"",
            HANG,
        );
        assert!(
            out.status.success(),
            "explain {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let explained: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(explained.get("rules").is_some(), "{name}: {explained:#}");
    }

    // The whole directory again: every message counted once more, as a duplicate or failed.
    let again = ingest_json(&w, &dir);
    assert_eq!(counted(&again), hostile.len() as u64, "{again:#}");
    assert_eq!(again["processed"], 0, "{again:#}");
    assert_eq!(
        again["messages"].as_array().unwrap().len(),
        hostile.len(),
        "{again:#}"
    );

    // Whatever failed is listed with its error, for `retry`.
    let failed = w.json(&["failed"]);
    assert_eq!(
        failed.as_array().unwrap().len() as u64,
        again["failed"].as_u64().unwrap(),
        "{failed:#}"
    );
}

#[test]
fn parseable_hostile_messages_keep_what_the_rules_need() {
    for (name, raw) in hostile_messages() {
        let explanation = bounded::within(HANG, name, move || {
            let (pipeline, _dir) = pipeline_with(THREAD_RULE, "50MB");
            pipeline.explain(&raw, "cli").unwrap()
        });
        match name {
            "a 1 MB subject line" => {
                let subject = explanation.subject.unwrap();
                assert!(subject.starts_with("тема тема"), "{name}");
                assert_eq!(subject.chars().count(), 500_000 - 1, "{name}: subject cut");
            }
            "deep MIME nesting (200 levels)"
            | "5000 headers"
            | "10,000 recipients"
            | "NUL bytes"
            | "a 2 MB body line without a newline" => {
                assert!(
                    explanation.error.is_none(),
                    "{name}: {:?}",
                    explanation.error
                );
                assert_eq!(explanation.actions.len(), 1, "{name}");
            }
            _ => {}
        }
    }
}

#[test]
fn one_hostile_message_does_not_hold_up_the_others_of_its_batch() {
    let (mut pipeline, _dir) = pipeline_with(THREAD_RULE, "50MB");
    let mut batch: Vec<Incoming> = hostile_messages()
        .into_iter()
        .map(|(name, raw)| Incoming::new(raw, "support", name.into()))
        .collect();
    batch.push(Incoming::new(
        message("good", "", b"an ordinary request\r\n"),
        "support",
        "good".into(),
    ));
    let inputs = batch.len();
    let outcomes = bounded::within(HANG, "a batch of hostile messages", move || {
        pipeline.process_batch(batch, None).unwrap()
    });
    assert_eq!(outcomes.len(), inputs);
    let good = outcomes.last().unwrap();
    assert_eq!(good.status, OutcomeStatus::Applied, "{good:?}");
    assert_eq!(good.message_id.as_deref(), Some("good@hostile.example"));
}

/// The workdir's config with `[limits] max_message_size = SIZE`.
fn set_size_limit(w: &Workdir, size: &str) {
    let text = std::fs::read_to_string(&w.config).unwrap();
    let text = match text.find("\n[limits]") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    std::fs::write(
        &w.config,
        format!("{text}\n[limits]\nmax_message_size = \"{size}\"\n"),
    )
    .unwrap();
}

#[test]
fn an_oversized_message_fails_unparsed_keeps_its_bytes_and_retries_once_the_limit_is_raised() {
    let w = Workdir::with_rules(&[("all.toml", THREAD_RULE)]);
    set_size_limit(&w, "64KB");
    let big = message("big", "", "Причина: дорого\r\n".repeat(8000).as_bytes());
    assert!(big.len() > 64 * 1024);
    let path = w.path("big.eml");
    std::fs::write(&path, &big).unwrap();

    let result = ingest_json(&w, &path);
    assert_eq!(result["failed"], 1, "{result:#}");
    let error = result["messages"][0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        format!(
            "message is {} bytes, over the limit of 65536 bytes (limits.max_message_size)",
            big.len()
        )
    );
    // Keyed by its Message-ID like any other message, so that the file given again, or the
    // same message fetched again, is the same record.
    assert_eq!(result["messages"][0]["message_id"], "big@hostile.example");
    let again = ingest_json(&w, &path);
    assert_eq!(again["failed"], 1, "{again:#}");
    let failed = w.json(&["failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed:#}");
    assert_eq!(w.json(&["task", "list"]).as_array().unwrap().len(), 0);

    // Its bytes were kept: once the limit is raised, `retry` applies it, and only once.
    set_size_limit(&w, "1MB");
    let retried = w.json(&["retry"]);
    assert_eq!(retried["applied"], 1, "{retried:#}");
    assert_eq!(w.json(&["failed"]).as_array().unwrap().len(), 0);
    let tasks = w.json(&["task", "list"]);
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks:#}");
    let once_more = ingest_json(&w, &path);
    assert_eq!(once_more["duplicates"], 1, "{once_more:#}");
}

#[test]
fn an_mbox_with_broken_separators_loses_no_message() {
    let w = Workdir::with_rules(&[("all.toml", THREAD_RULE)]);
    let mut mbox = Vec::new();
    // A proper separator; then one without a date; one with CRLF; two separators in a row
    // (an empty message); an unescaped "From " line in a body (mboxo splits there: the
    // fragment is kept as a failed message, not dropped); a last message without a newline.
    mbox.extend_from_slice(b"From a@client.example Mon Jan  5 10:00:00 2026\n");
    mbox.extend_from_slice(&message("mbox-1", "", b"first\n>From the escaped line\n\n"));
    mbox.extend_from_slice(b"From \n");
    mbox.extend_from_slice(&message("mbox-2", "", b"second\n\n"));
    mbox.extend_from_slice(b"From b@client.example Mon Jan  5 10:00:00 2026\r\n");
    mbox.extend_from_slice(b"From c@client.example Sat Feb 31 99:99:99 65535\n");
    mbox.extend_from_slice(&message(
        "mbox-3",
        "",
        b"third\nFrom the desk of the director:\nplease call\n\n",
    ));
    mbox.extend_from_slice(b"From garbage\xff\xfe\n");
    mbox.extend_from_slice(&message("mbox-4", "", b"fourth, no final newline"));
    let path = w.path("broken.mbox");
    std::fs::write(&path, &mbox).unwrap();

    let result = ingest_json(&w, &path);
    let messages = result["messages"].as_array().unwrap();
    // Four messages, the empty one between two separators, and the body fragment.
    assert_eq!(messages.len(), 6, "{result:#}");
    assert_eq!(counted(&result), 6, "{result:#}");
    let ids: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["message_id"].as_str())
        .collect();
    for id in ["mbox-1", "mbox-2", "mbox-3", "mbox-4"] {
        assert!(
            ids.contains(&format!("{id}@hostile.example").as_str()),
            "{id}: {result:#}"
        );
    }
    assert_eq!(result["failed"], 2, "{result:#}");
    assert_eq!(w.json(&["failed"]).as_array().unwrap().len(), 2);
    let escaped = w.json(&["task", "show", "1"]);
    assert!(
        escaped["description"]
            .as_str()
            .unwrap()
            .contains("\nFrom the escaped line"),
        "{escaped:#}"
    );
}

/// `mailrules check` on one rule whose subject regex is `pattern`.
fn check_regex(pattern: &str) -> (bool, String, Workdir) {
    let rule = format!(
        "[[rule]]\nname = \"pathological\"\n[rule.when]\nsubject = {{ regex = '''{pattern}''' }}\n[[rule.do]]\naction = \"ignore\"\n"
    );
    let w = Workdir::with_rules(&[("p.toml", &rule)]);
    let out = bounded::run(&mut w.command(&["check"]), b"", HANG);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text, w)
}

#[test]
fn huge_regexes_are_load_errors_with_file_line_and_column() {
    let hundred_kb: String = (0..12_000).map(|i| format!("w{i:05}|")).collect::<String>() + "end";
    assert!(hundred_kb.len() > 80_000);
    for (name, pattern) in [
        ("nested counted repetition", r"(\w{1000}){1000}".to_string()),
        (
            "a counted repetition of a counted repetition",
            r"a{1000}{1000}".to_string(),
        ),
        (
            "a 100 KB alternation of \\w runs",
            hundred_kb.replace('w', r"\w"),
        ),
        (
            "a huge Unicode class repeated",
            r"[\p{L}\p{N}]{5000}".to_string(),
        ),
    ] {
        let (ok, text, w) = check_regex(&pattern);
        assert!(!ok, "{name}: loaded\n{text}");
        let file = w.path("rules/p.toml").display().to_string();
        assert!(
            text.contains(&format!("{file}:4:")),
            "{name}: no file:line:col\n{text}"
        );
        assert!(text.contains("rule \"pathological\""), "{name}\n{text}");
        assert!(
            text.contains("larger than the limit") || text.contains("bad regex"),
            "{name}\n{text}"
        );
        assert!(
            text.len() < 2_000,
            "{name}: the error repeats the pattern\n{text}"
        );
    }
}

#[test]
fn a_backtracking_bomb_loads_and_matches_in_linear_time() {
    // `(a+)+$` is exponential for backtracking engines; Rust's regex is not one.
    let (ok, text, w) = check_regex(r"^(a+)+$");
    assert!(ok, "{text}");
    let mut subject = "a".repeat(100_000);
    subject.push('!');
    let raw = format!(
        "From: c@client.example\r\nMessage-ID: <bomb@hostile.example>\r\nSubject: {subject}\r\n\r\nx\r\n"
    );
    let path = w.path("bomb.eml");
    std::fs::write(&path, raw).unwrap();
    let result = ingest_json(&w, &path);
    assert_eq!(result["processed"], 1, "{result:#}");
    assert_eq!(result["messages"][0]["rule"], Value::Null, "{result:#}");
}

/// A pipeline on a fresh store file, with `rules` and a message size limit.
fn pipeline_with(rules: &str, max_size: &str) -> (Pipeline, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/r.toml"), rules).unwrap();
    let config_path = dir.path().join("mailrules.toml");
    std::fs::write(
        &config_path,
        format!(
            "store = \"store.db\"\nrules = \"rules\"\n[staff]\ndomains = [\"acme.example\"]\n\
             [limits]\nmax_message_size = \"{max_size}\"\n"
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let rules = RuleSet::load_dir(&config.rules).unwrap();
    let store = Store::open(&config.store).unwrap();
    (Pipeline::new(Arc::new(config), Arc::new(rules), store), dir)
}
