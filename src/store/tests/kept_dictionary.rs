//! Kept mail compressed with a dictionary trained on the store's own mail: trained after
//! `TRAIN_AFTER` messages, stored with the first row that uses it, read back exactly; rows
//! of older stores and rows without one keep reading; a missing or damaged dictionary is an
//! error that names the message; `keep_mail` never takes a dictionary away.

use std::sync::Arc;

use super::*;

/// Deterministic, varied mail of one shop: the same headers and signature every time, the
/// rest different (xorshift picks the words).
fn shop_mail(n: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "счёт",
        "оплата",
        "доставка",
        "заказ",
        "возврат",
        "товар",
        "склад",
        "курьер",
        "скидка",
        "договор",
        "акт",
        "накладная",
        "invoice",
        "delivery",
        "refund",
        "order",
    ];
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut body = String::new();
    for i in 0..120 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push_str(WORDS[(x % 16) as usize]);
        body.push_str(if i % 12 == 11 { ".\r\n" } else { " " });
    }
    format!(
        "Return-Path: <client{n}@example.com>\r\n\
         Received: from mx{m}.example.net (mx{m}.example.net [10.0.{a}.{b}])\r\n\
         \tby mail.acme.example with ESMTPS id {x:x}\r\n\
         Message-ID: <{n}.{x:x}@example.com>\r\n\
         From: Клиент {n} <client{n}@example.com>\r\n\
         To: support@acme.example\r\n\
         Subject: Заказ №{n}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         Здравствуйте!\r\n\r\n{body}\r\n\r\n-- \r\nС уважением,\r\nКлиент {n}\r\n\
         ООО «Ромашка», отдел закупок\r\nтел. +7 495 000-00-00\r\n",
        m = n % 7,
        a = n % 250,
        b = (n * 7) % 250,
    )
    .into_bytes()
}

/// A dictionary trained the way the preparing threads train it: on the mail they compress.
fn trained(handle: &MailDictionary) -> Arc<TrainedDictionary> {
    for n in 0..TRAIN_AFTER as u64 {
        Compressed::with(shop_mail(n), handle);
    }
    handle
        .current()
        .expect("trained after TRAIN_AFTER messages")
}

fn keep(store: &mut Store, key: &str, raw: Vec<u8>, handle: &MailDictionary, day: u32) -> i64 {
    let mut kept = record(key);
    kept.raw = raw;
    kept.compress_with(handle);
    store
        .apply_batch(
            vec![ApplyItem {
                record: kept,
                plan: Ok(plan("c@example.com", None, vec![create_task("A")])),
            }],
            None,
            &options(at(day, 10)),
        )
        .unwrap();
    store
        .messages(&MessageFilter::default())
        .unwrap()
        .into_iter()
        .find(|m| m.message_id.as_deref() == Some(key))
        .unwrap()
        .id
}

fn stored_size(store: &Store, id: i64) -> u64 {
    match store.message(id).unwrap().unwrap().bytes {
        KeptBytes::Kept { stored, .. } => stored,
        other => panic!("{other:?}"),
    }
}

/// A message with a photo: its text goes through the dictionary, the photo is kept decoded.
fn mail_with_photo(n: u64) -> Vec<u8> {
    use base64::Engine;
    let photo = noise(20_000, 11);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&photo);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "Message-ID: <photo{n}@x>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\n{}\r\n--b\r\nContent-Type: image/jpeg\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        String::from_utf8(shop_mail(n)).unwrap(),
        lines.join("\r\n")
    )
    .into_bytes()
}

#[test]
fn mail_kept_after_the_dictionary_is_trained_reads_back_exactly_and_takes_less_room() {
    let mut store = Store::open_in_memory().unwrap();
    let handle = store.mail_dictionary().unwrap();
    assert!(handle.current().is_none(), "a new store has no dictionary");
    let without = keep(&mut store, "before@x", shop_mail(9_001), &handle, 20);
    trained(&handle);
    let with = keep(&mut store, "after@x", shop_mail(9_001), &handle, 20);
    let photo = keep(&mut store, "photo@x", mail_with_photo(9_002), &handle, 20);
    for (id, raw) in [
        (without, shop_mail(9_001)),
        (with, shop_mail(9_001)),
        (photo, mail_with_photo(9_002)),
    ] {
        assert!(store.message_raw(id).unwrap() == Some(raw), "message {id}");
    }
    // The same mail, smaller with the dictionary.
    assert!(
        stored_size(&store, with) < stored_size(&store, without),
        "{} with, {} without",
        stored_size(&store, with),
        stored_size(&store, without)
    );
    // Stored once, with the first row that uses it; a store opened again starts with it.
    assert_eq!(count(&store, "mail_dictionaries"), 1);
    assert_eq!(store.mail_dictionary().unwrap().current(), handle.current());
}

#[test]
fn a_missing_or_damaged_dictionary_is_an_error_that_names_the_message() {
    let mut store = Store::open_in_memory().unwrap();
    let handle = MailDictionary::default();
    trained(&handle);
    let id = keep(&mut store, "d@x", shop_mail(42), &handle, 20);
    store
        .conn
        .execute(
            "UPDATE mail_dictionaries SET bytes = CAST(x'00' || bytes AS BLOB)",
            [],
        )
        .unwrap();
    let damaged = store.message_raw(id).unwrap_err().to_string();
    assert!(
        damaged.contains(&format!("message {id}")) && damaged.contains("damaged"),
        "{damaged}"
    );
    store
        .conn
        .execute("DELETE FROM mail_dictionaries", [])
        .unwrap();
    let missing = store.message_raw(id).unwrap_err().to_string();
    assert!(
        missing.contains(&format!("message {id}")) && missing.contains("missing"),
        "{missing}"
    );
}

#[test]
fn keep_mail_drops_old_bytes_but_never_a_dictionary_that_newer_rows_use() {
    let mut store = Store::open_in_memory().unwrap();
    let handle = MailDictionary::default();
    trained(&handle);
    let old = keep(&mut store, "old@x", shop_mail(1), &handle, 1);
    let new = keep(&mut store, "new@x", shop_mail(2), &handle, 20);
    assert_eq!(
        store
            .drop_mail_received_before(at(10, 0), at(25, 0))
            .unwrap(),
        1
    );
    assert_eq!(store.message_raw(old).unwrap(), None);
    assert_eq!(store.message_raw(new).unwrap(), Some(shop_mail(2)));
    assert_eq!(count(&store, "mail_dictionaries"), 1);
}

#[test]
fn a_store_of_schema_11_upgrades_and_its_kept_mail_reads_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    let raw = shop_mail(7);
    {
        // The store as the previous release left it: a message kept with zstd, no dictionary.
        let conn = store_of_schema(&path, 11);
        conn.execute(
            "INSERT INTO messages (id, key, mailbox, source, subject, status, received_at, \
               processed_at) VALUES (1, 'old@x', 'cli', 'f.eml', 's', 'applied', 'x', 'x')",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO message_bytes (id, encoding, size, bytes) VALUES (1, 'zstd', ?1, ?2)",
            rusqlite::params![raw.len() as i64, zstd::bulk::compress(&raw, 1).unwrap()],
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        migrations::MIGRATIONS.len() as u32
    );
    assert_eq!(store.message_raw(1).unwrap(), Some(raw));
    // New mail in the upgraded store uses a dictionary; the old row still reads.
    let handle = store.mail_dictionary().unwrap();
    trained(&handle);
    let new = keep(&mut store, "new@x", shop_mail(8), &handle, 20);
    assert_eq!(store.message_raw(new).unwrap(), Some(shop_mail(8)));
    assert_eq!(store.message_raw(1).unwrap(), Some(shop_mail(7)));
}

#[test]
fn a_store_that_kept_enough_mail_without_a_dictionary_trains_one_with_the_next_message() {
    let mut store = Store::open_in_memory().unwrap();
    // Kept over several runs of the program, none of which saw enough mail to train one.
    let items = (0..TRAIN_AFTER as u64)
        .map(|n| {
            let mut kept = record(&format!("{n}@x"));
            kept.raw = shop_mail(n);
            kept.compress();
            ApplyItem {
                record: kept,
                plan: Ok(plan("c@example.com", None, vec![create_task("A")])),
            }
        })
        .collect();
    store
        .apply_batch(items, None, &options(at(20, 10)))
        .unwrap();
    assert_eq!(count(&store, "mail_dictionaries"), 0);
    let handle = store.mail_dictionary().unwrap();
    assert!(handle.current().is_none());
    let next = keep(&mut store, "next@x", shop_mail(9_000), &handle, 21);
    assert!(handle.current().is_some());
    assert_eq!(count(&store, "mail_dictionaries"), 1);
    assert_eq!(store.message_raw(next).unwrap(), Some(shop_mail(9_000)));
    assert_eq!(store.message_raw(1).unwrap(), Some(shop_mail(0)));
}
