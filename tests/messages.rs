//! `mailrules message list|show|attachment|prune` through the built binary: every message's
//! fate (applied, ignored, failed, delivered again), its original bytes and attachments, the
//! `keep_mail` retention, bad input, and hostile text kept off the terminal.

use crate::support::workdir::{fixture, Workdir};

const RULES: &str = r#"
[[rule]]
name = "spam"
[rule.when]
subject = { contains = "SPAM" }
[[rule.do]]
action = "ignore"

[[rule]]
name = "request"
[rule.when]
subject = { regex = 'Заявка|Счёт' }
[[rule.do]]
action = "create_task"
title = "{subject}"
"#;

/// A workdir with [`RULES`], `unmatched = "ignore"` and the extra top-level `config` lines.
fn workdir(config: &str) -> Workdir {
    let w = Workdir::with_rules(&[("rules.toml", RULES)]);
    let text = std::fs::read_to_string(&w.config).unwrap();
    let text = text.replace("unmatched = \"thread\"", "unmatched = \"ignore\"");
    std::fs::write(&w.config, format!("{config}{text}")).unwrap();
    w
}

fn mail(w: &Workdir, name: &str, id: &str, subject: &str) -> String {
    let text = format!(
        "From: Client <client@example.com>\r\nTo: support@acme.example\r\n\
         Subject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
         \r\nHello.\r\n"
    );
    let path = w.path(name);
    std::fs::write(&path, &text).unwrap();
    path.display().to_string()
}

fn list(w: &Workdir, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["message", "list"];
    all.extend_from_slice(args);
    w.json(&all).as_array().unwrap().clone()
}

fn ids(messages: &[serde_json::Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["message_id"].as_str().unwrap_or("-"))
        .collect()
}

#[test]
fn every_message_is_listed_with_its_fate_newest_first() {
    let w = workdir("");
    let request = mail(&w, "1.eml", "req@client", "Заявка на ремонт");
    let spam = mail(&w, "2.eml", "spam@client", "SPAM offer");
    let other = mail(&w, "3.eml", "other@client", "Hello there");
    std::fs::write(w.path("4.eml"), "\u{1}\u{2} not a message").unwrap();
    for path in [&request, &spam, &other] {
        w.ok(&["ingest", path]);
    }
    w.run(&["ingest", w.path("4.eml").to_str().unwrap()]);
    // Delivered again: counted on its row, not a second row.
    w.ok(&["ingest", &request]);

    let all = list(&w, &[]);
    assert_eq!(
        ids(&all),
        ["-", "other@client", "spam@client", "req@client"]
    );
    let statuses: Vec<&str> = all.iter().map(|m| m["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "ignored", "ignored", "applied"]);
    let request = &all[3];
    for key in [
        "id",
        "message_id",
        "status",
        "rule",
        "task",
        "from",
        "subject",
        "received_at",
        "error",
    ] {
        assert!(request.get(key).is_some(), "{key} missing: {request}");
    }
    assert_eq!(request["rule"], "request");
    assert_eq!(request["from"], "client@example.com");
    assert_eq!(request["subject"], "Заявка на ремонт");
    assert_eq!(request["duplicates"], 1);
    assert_eq!(all[2]["rule"], "spam");
    assert!(all[1]["rule"].is_null(), "no rule matched: {}", all[1]);
    assert!(all[0]["error"].as_str().unwrap().contains("unparseable"));

    assert_eq!(
        ids(&list(&w, &["--status", "ignored"])),
        ["other@client", "spam@client"]
    );
    assert_eq!(ids(&list(&w, &["--status", "duplicate"])), ["req@client"]);
    assert_eq!(list(&w, &["--status", "failed"]).len(), 1);
    let task = request["task"].as_i64().unwrap().to_string();
    assert_eq!(ids(&list(&w, &["--task", &task])), ["req@client"]);
    assert_eq!(list(&w, &["--limit", "2"]).len(), 2);

    let table = w.ok(&["message", "list", "--status", "ignored"]);
    assert!(
        table.contains("SPAM offer") && table.contains("ignored"),
        "{table}"
    );
    let out = w.run(&["message", "list", "--status", "lost"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate"));
}

#[test]
fn show_gives_headers_fate_attachments_and_the_original_bytes() {
    let w = workdir("");
    let eml = fixture("encodings/attachments.eml");
    w.ok(&["ingest", eml.to_str().unwrap()]);
    let id = list(&w, &[])[0]["id"].as_i64().unwrap().to_string();

    let text = w.ok(&["message", "show", &id]);
    for expected in [
        "Анна Соколова <anna@firm.example>",
        "Счёт и спецификация",
        "applied",
        "  2  Счёт 512.pdf",
        "application/pdf",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let shown = w.json(&["message", "show", &id]);
    assert_eq!(shown["headers"]["To"], "support@firm.example");
    assert_eq!(shown["attachments"][1]["name"], "Счёт 512.pdf");
    assert_eq!(shown["bytes"]["state"], "kept");

    let raw = w
        .command(&["message", "show", &id, "--raw"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    assert_eq!(
        raw.stdout,
        std::fs::read(&eml).unwrap(),
        "the bytes as they came"
    );

    let pdf = w
        .command(&["message", "attachment", &id, "2"])
        .output()
        .unwrap();
    assert!(pdf.status.success());
    assert!(pdf.stdout.starts_with(b"%PDF"), "{:?}", &pdf.stdout[..8]);
    let file = w.path("invoice.pdf");
    w.ok(&[
        "message",
        "attachment",
        &id,
        "2",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&file).unwrap(), pdf.stdout);
}

/// Bytes that do not compress, as a JPEG's or a PDF's (xorshift, deterministic).
fn incompressible(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// What message `id`'s bytes take in the store, as `message show` says.
fn stored_size(w: &Workdir, id: &str) -> usize {
    let text = w.ok(&["message", "show", id]);
    text.split_once(" in the store)")
        .and_then(|(before, _)| before.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the stored size in\n{text}"))
}

#[test]
fn a_photo_attachment_comes_back_exactly_and_is_not_stored_as_base64() {
    use base64::Engine;
    let w = workdir("");
    let photo = incompressible(60_001);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&photo);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let eml = format!(
        "From: Client <client@example.com>\r\nTo: support@acme.example\r\n\
         Subject: Заявка: принтер\r\nMessage-ID: <photo@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nФото во вложении.\r\n\
         --b\r\nContent-Type: image/jpeg; name=\"photo.jpg\"\r\n\
         Content-Disposition: attachment; filename=\"photo.jpg\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    );
    let path = w.path("photo.eml");
    std::fs::write(&path, &eml).unwrap();
    w.ok(&["ingest", path.to_str().unwrap()]);
    let id = list(&w, &[])[0]["id"].as_i64().unwrap().to_string();

    let raw = w
        .command(&["message", "show", &id, "--raw"])
        .output()
        .unwrap();
    assert!(raw.status.success());
    assert!(raw.stdout == eml.as_bytes(), "the bytes as they came");
    let attachment = w
        .command(&["message", "attachment", &id, "1"])
        .output()
        .unwrap();
    assert!(
        attachment.status.success(),
        "{}",
        String::from_utf8_lossy(&attachment.stderr)
    );
    assert!(attachment.stdout == photo, "the photo as it was sent");
    // Kept decoded: about the photo's size, not its base64's (a third more).
    let stored = stored_size(&w, &id);
    assert!(stored < photo.len() + 1000, "{stored} bytes stored");
}

#[test]
fn bad_ids_and_attachment_numbers_are_user_errors() {
    let w = workdir("");
    let eml = fixture("encodings/attachments.eml");
    w.ok(&["ingest", eml.to_str().unwrap()]);
    let plain = mail(&w, "plain.eml", "plain@client", "Заявка");
    w.ok(&["ingest", &plain]);
    let error = |args: &[&str]| {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(error(&["message", "show", "999"]).contains("no message with id 999"));
    assert!(error(&["message", "show", "999", "--raw"]).contains("no message with id 999"));
    assert!(error(&["message", "attachment", "999", "1"]).contains("no message with id 999"));
    let e = error(&["message", "attachment", "1", "4"]);
    assert!(
        e.contains("has 3 attachments") && e.contains("no attachment 4"),
        "{e}"
    );
    assert!(error(&["message", "attachment", "1", "0"]).contains("numbered from 1"));
    assert!(error(&["message", "attachment", "2", "1"]).contains("message 2 has no attachments"));
}

#[test]
fn past_keep_mail_the_bytes_go_and_the_record_stays() {
    let w = workdir("keep_mail = \"30d\"\n");
    let eml = fixture("encodings/attachments.eml");
    w.ok(&["ingest", eml.to_str().unwrap()]);
    let id = list(&w, &[])[0]["id"].as_i64().unwrap().to_string();

    let soon = chrono::Utc::now() + chrono::Duration::days(29);
    let text = w.ok(&["message", "prune", "--at", &soon.to_rfc3339()]);
    assert!(text.contains("of 0 messages"), "{text}");
    w.ok(&["message", "show", &id, "--raw"]);

    let later = chrono::Utc::now() + chrono::Duration::days(31);
    let text = w.ok(&["message", "prune", "--at", &later.to_rfc3339()]);
    assert!(text.contains("of 1 message "), "{text}");

    let shown = w.ok(&["message", "show", &id]);
    assert!(
        shown.contains("applied") && shown.contains("deleted at"),
        "{shown}"
    );
    assert_eq!(list(&w, &[])[0]["status"], "applied");
    for args in [
        vec!["message", "show", &id, "--raw"],
        vec!["message", "attachment", &id, "1"],
    ] {
        let out = w.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("deleted") && err.contains("keep_mail"),
            "{err}"
        );
    }
}

/// A rule that fails every "Опрос" mail: the value it sets is not one its choice field allows,
/// until [`SURVEY_FIXED`] allows it.
const SURVEY: &str = r#"
[[field]]
name = "Причина"
type = "choice"
values = ["Другое"]

[[rule]]
name = "survey"
[rule.when]
subject = { contains = "Опрос" }
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "set"
if_missing = "create"
fields = { "Причина" = "{reason}" }
"#;

#[test]
fn keep_mail_failed_keeps_only_the_bytes_a_retry_needs() {
    let w = workdir("keep_mail = \"failed\"\n");
    w.write_rule("survey.toml", SURVEY);
    let request = mail(&w, "1.eml", "req@client", "Заявка");
    let survey = w.path("2.eml").display().to_string();
    std::fs::write(
        &survey,
        "From: Client <client@example.com>\r\nTo: support@acme.example\r\nSubject: Опрос\r\n\
         Message-ID: <survey@client>\r\n\r\nПричина: Цена\r\n",
    )
    .unwrap();
    let out = w.run(&["ingest", &request, &survey]);
    assert!(out.status.success(), "{out:?}");
    let all = list(&w, &[]);
    assert_eq!(ids(&all), ["survey@client", "req@client"]);
    assert_eq!(all[0]["status"], "failed");
    assert_eq!(all[1]["status"], "applied");
    let (failed, applied) = (all[0]["id"].to_string(), all[1]["id"].to_string());

    // The applied message's record stays and says where its bytes went.
    let shown = w.ok(&["message", "show", &applied]);
    assert!(
        shown.contains("applied") && shown.contains("deleted at") && shown.contains("keep_mail"),
        "{shown}"
    );
    let out = w.run(&["message", "show", &applied, "--raw"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keep_mail"), "{err}");

    // The failed one keeps its bytes exactly, for `retry`.
    let raw = w.ok(&["message", "show", &failed, "--raw"]);
    assert_eq!(raw, std::fs::read_to_string(&survey).unwrap());

    // Fixed and run again, it succeeds, and then its bytes go too.
    w.write_rule(
        "survey.toml",
        &SURVEY.replace(r#"["Другое"]"#, r#"["Другое", "Цена"]"#),
    );
    w.ok(&["retry"]);
    assert_eq!(list(&w, &[])[0]["status"], "applied");
    let out = w.run(&["message", "show", &failed, "--raw"]);
    assert_eq!(out.status.code(), Some(1));

    let text = w.ok(&["message", "prune"]);
    assert!(text.contains("nothing to prune"), "{text}");
}

#[test]
fn prune_without_keep_mail_keeps_everything() {
    let w = workdir("");
    let request = mail(&w, "1.eml", "req@client", "Заявка");
    w.ok(&["ingest", &request]);
    let far = (chrono::Utc::now() + chrono::Duration::days(10_000)).to_rfc3339();
    let text = w.ok(&["message", "prune", "--at", &far]);
    assert!(text.contains("kept forever"), "{text}");
    w.ok(&["message", "show", "1", "--raw"]);
}

#[test]
fn hostile_subjects_and_names_reach_the_terminal_without_control_characters() {
    let w = workdir("");
    let raw = "From: \"Evil\u{1b}[2J\" <evil@example.com>\r\nTo: support@acme.example\r\n\
               Subject: =?utf-8?B?0JfQsNGP0LLQutCwIBtdMDtvd25lZAcg4oCuZmRwLmV4ZQ==?=\r\n\
               Message-ID: <evil@client>\r\n\r\nbody\r\n";
    std::fs::write(w.path("evil.eml"), raw).unwrap();
    w.ok(&["ingest", w.path("evil.eml").to_str().unwrap()]);
    for args in [vec!["message", "list"], vec!["message", "show", "1"]] {
        let out = w.ok(&args);
        assert!(out.contains("Заявка"), "{out}");
        assert!(
            !out.chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "{args:?}: {out:?}"
        );
    }
}

/// Mail of one shop, alike in its headers and signature and different in the rest, as a
/// store's mail is (xorshift picks the words).
fn shop_mail(n: u64) -> String {
    const WORDS: [&str; 8] = [
        "счёт",
        "оплата",
        "доставка",
        "заказ",
        "возврат",
        "invoice",
        "delivery",
        "refund",
    ];
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let body: Vec<&str> = (0..80)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            WORDS[(x % 8) as usize]
        })
        .collect();
    format!(
        "From: Клиент {n} <client{n}@example.com>\r\nTo: support@acme.example\r\n\
         Subject: Заявка №{n}\r\nMessage-ID: <{n}.{x:x}@example.com>\r\n\
         Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nЗдравствуйте!\r\n\r\n{}\r\n\r\n\
         -- \r\nС уважением,\r\nКлиент {n}, ООО «Ромашка»\r\n",
        body.join(" ")
    )
}

#[test]
fn mail_kept_after_the_store_trains_its_dictionary_comes_back_exactly() {
    let w = workdir("");
    let maildir = w.path("box");
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    // More than the store needs to train its dictionary, in one run.
    let count = mailrules::store::TRAIN_AFTER as u64 + 20;
    for n in 0..count {
        let file = maildir.join("cur").join(format!("{n:04}.eml"));
        std::fs::write(file, shop_mail(n)).unwrap();
    }
    w.ok(&["ingest", maildir.to_str().unwrap()]);
    // And one more in a later run, with the dictionary the store keeps.
    let later = w.path("later.eml");
    std::fs::write(&later, shop_mail(count)).unwrap();
    w.ok(&["ingest", later.to_str().unwrap()]);

    let all = list(&w, &["--limit", "1000"]);
    assert_eq!(all.len() as u64, count + 1);
    for shown in [&all[0], &all[1], &all[all.len() - 1]] {
        let id = shown["id"].as_i64().unwrap().to_string();
        let raw = w
            .command(&["message", "show", &id, "--raw"])
            .output()
            .unwrap();
        assert!(raw.status.success());
        let subject = shown["subject"].as_str().unwrap();
        let n: u64 = subject.trim_start_matches("Заявка №").parse().unwrap();
        assert!(raw.stdout == shop_mail(n).as_bytes(), "message {n}");
    }
    // The first messages were kept before there was a dictionary, the last ones with it:
    // mail this alike takes less room with it.
    let first = stored_size(&w, &all[all.len() - 1]["id"].as_i64().unwrap().to_string());
    let last = stored_size(&w, &all[0]["id"].as_i64().unwrap().to_string());
    assert!(last * 4 < first * 3, "{last} bytes with, {first} without");
}
