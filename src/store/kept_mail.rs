//! Every message's original bytes, kept compressed (zstd) in `message_bytes`, one row per
//! message row: writing them with the message, reading them back in any form (`zstd`,
//! `zstd-parts` for a message with attachments that are compressed already, see
//! `kept_layout.rs`, or `plain` for failed messages kept before bytes were compressed), and
//! dropping them past the config's `keep_mail` while the record of the message's fate stays.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use std::sync::Arc;

use super::kept_dictionary::{self, MailDictionary, TrainedDictionary};
use super::{timestamp, MessageRecord, Store, StoreError};

/// zstd's fastest positive level: keeping every message must not slow ingest down much
/// (BENCHMARKS.md), and on a machine with few cores the preparing threads' work is what the
/// applying thread waits for. Level 3 (zstd's default) spent half again as many
/// instructions in zstd for a store 0.7 % smaller.
pub(super) const LEVEL: i32 = 1;

thread_local! {
    /// One compression context per preparing thread, used for every message it compresses (a
    /// new context per message allocated and cleared its tables every time), made again only
    /// when the dictionary changes (the digest of the one it holds, `None`: none).
    static COMPRESSOR: std::cell::RefCell<Option<(Option<String>, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `raw` compressed with this thread's context and `dictionary`; `None` when zstd cannot (no
/// memory).
fn zstd_compress(raw: &[u8], dictionary: Option<&TrainedDictionary>) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let wanted = dictionary.map(|d| d.digest());
        if slot.as_ref().map(|(held, _)| held.as_deref()) != Some(wanted) {
            let made = match dictionary {
                Some(d) => zstd::bulk::Compressor::with_dictionary(LEVEL, d.bytes()),
                None => zstd::bulk::Compressor::new(LEVEL),
            };
            *slot = made.ok().map(|c| (wanted.map(str::to_string), c));
        }
        slot.as_mut()?.1.compress(raw).ok()
    })
}

/// Kept bytes this large are written with incremental blob I/O rather than bound.
const INCREMENTAL_BLOB: usize = 1 << 20;

/// Messages whose bytes are dropped per transaction, so that the first run after `keep_mail`
/// is set on a large store never holds the write lock (and the daemon's batches) for long.
const DROP_CHUNK: i64 = 1000;

/// A message's original bytes, compressed. Made on the preparing threads
/// (`pipeline::Preparer`): compressing is most of what keeping every message costs, and the
/// thread that holds the store is the one all messages wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compressed {
    /// `"zstd"`, `"zstd-parts"` (`kept_layout.rs`), or `"plain"` when zstd could not compress (it fails only when it cannot
    /// allocate its context): the bytes are then kept as they are.
    encoding: &'static str,
    bytes: Vec<u8>,
    /// The original length.
    size: usize,
    /// The dictionary the zstd frame was made with (`kept_dictionary.rs`).
    dictionary: Option<Arc<TrainedDictionary>>,
}

impl Compressed {
    /// `raw` compressed without a dictionary.
    pub fn new(raw: &[u8]) -> Compressed {
        Compressed::with(raw.to_vec(), &MailDictionary::default())
    }

    /// The same, taking the bytes: attachments that are compressed already (PDF, JPEG, ZIP)
    /// are decoded inside this very buffer and not compressed again (`kept_layout.rs`), so that
    /// a large one is never held twice.
    pub fn of(raw: Vec<u8>) -> Compressed {
        Compressed::with(raw, &MailDictionary::default())
    }

    /// The same with the store's dictionary when it has one; the text is offered to it as a
    /// training sample when it has none yet.
    pub fn with(raw: Vec<u8>, dictionaries: &MailDictionary) -> Compressed {
        let size = raw.len();
        // The dictionary the text was compressed with: the one this very text completed the
        // training of, too, so that the message that trains it also stores it.
        let used = std::cell::RefCell::new(None);
        let compress = |text: &[u8]| {
            let dictionary = dictionaries.current().or_else(|| {
                dictionaries.offer(text);
                dictionaries.current()
            });
            let compressed = zstd_compress(text, dictionary.as_deref());
            *used.borrow_mut() = dictionary;
            compressed
        };
        let (encoding, bytes) = match super::kept_layout::pack(raw, compress) {
            Ok(packed) => ("zstd-parts", packed),
            Err(raw) => match compress(&raw) {
                Some(bytes) => ("zstd", bytes),
                None => ("plain", raw),
            },
        };
        Compressed {
            dictionary: used.into_inner().filter(|_| encoding != "plain"),
            encoding,
            bytes,
            size,
        }
    }

    /// Whether there was nothing to keep (a message the server could not deliver).
    fn nothing(&self) -> bool {
        self.size == 0
    }
}

impl MessageRecord {
    /// Compresses the original bytes (if not done yet) and lets the uncompressed ones go.
    pub fn compress(&mut self) {
        self.compress_with(&MailDictionary::default());
    }

    /// The same with the store's dictionary (`Pipeline::preparer` shares it).
    pub fn compress_with(&mut self, dictionaries: &MailDictionary) {
        if self.compressed.is_none() && !self.raw.is_empty() {
            self.compressed = Some(Compressed::with(
                std::mem::take(&mut self.raw),
                dictionaries,
            ));
        }
        self.raw = Vec::new();
    }
}

/// Writes the bytes of message row `id` (the record's, compressed here when the caller did not
/// do it beforehand). A message run again (`retry`) replaces what its row kept.
pub(super) fn write(conn: &Connection, id: i64, record: &MessageRecord) -> Result<(), StoreError> {
    let made;
    let compressed = match &record.compressed {
        Some(c) => c,
        None => {
            made = Compressed::new(&record.raw);
            &made
        }
    };
    if compressed.nothing() {
        // Nothing was delivered (the server could not): there is nothing to keep.
        return Ok(());
    }
    let dictionary = match &compressed.dictionary {
        Some(d) => Some(kept_dictionary::id_of(conn, d)?),
        None => None,
    };
    if compressed.bytes.len() >= INCREMENTAL_BLOB {
        // Bound as a parameter, a blob is copied whole first (rusqlite binds it transient):
        // a large one is written into its place instead, so it is never in memory twice. And
        // through a small page cache: at the usual 16 MiB, SQLite would hold the blob's pages
        // in memory beside the blob itself (peak RSS, BENCHMARKS.md); with 2 MiB it writes them
        // to the WAL as it goes.
        let cache: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA cache_size = -2048")?;
        let written = write_in_place(conn, id, compressed, dictionary);
        conn.pragma_update(None, "cache_size", cache)?;
        return written;
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO message_bytes (id, encoding, size, bytes, dictionary) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        compressed.encoding,
        compressed.size as i64,
        compressed.bytes,
        dictionary
    ])?;
    Ok(())
}

/// Lets the kept bytes of message row `id` go, if it has any.
pub(super) fn forget(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM message_bytes WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A large blob: its row with zeros in their place, then the bytes written into them.
fn write_in_place(
    conn: &Connection,
    id: i64,
    compressed: &Compressed,
    dictionary: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO message_bytes (id, encoding, size, bytes, dictionary) \
         VALUES (?1, ?2, ?3, zeroblob(?4), ?5)",
    )?
    .execute(params![
        id,
        compressed.encoding,
        compressed.size as i64,
        compressed.bytes.len() as i64,
        dictionary
    ])?;
    conn.blob_open(rusqlite::MAIN_DB, c"message_bytes", c"bytes", id, false)?
        .write_all_at(&compressed.bytes, 0)?;
    Ok(())
}

/// The original bytes of message row `id`, when they are kept.
pub(super) fn read(conn: &Connection, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let row: Option<(String, i64, Vec<u8>, Option<i64>)> = conn
        .prepare_cached(
            "SELECT encoding, size, bytes, dictionary FROM message_bytes WHERE id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((encoding, size, bytes, dictionary)) = row else {
        return Ok(None);
    };
    if encoding == "plain" {
        return Ok(Some(bytes));
    }
    let size = usize::try_from(size).map_err(|_| bad_bytes(id, "a negative size"))?;
    let dictionary = match dictionary {
        Some(dictionary) => {
            Some(kept_dictionary::read(conn, dictionary)?.map_err(|e| bad_bytes(id, &e))?)
        }
        None => None,
    };
    let decompressor = match &dictionary {
        Some(d) => zstd::bulk::Decompressor::with_dictionary(d),
        None => zstd::bulk::Decompressor::new(),
    };
    let mut decompressor = decompressor.map_err(|e| bad_bytes(id, &e.to_string()))?;
    let mut decompress = |frame: &[u8], len: usize| {
        decompressor
            .decompress(frame, len)
            .map_err(|e| e.to_string())
    };
    match encoding.as_str() {
        "zstd" => {
            let raw = decompress(&bytes, size).map_err(|e| bad_bytes(id, &e))?;
            if raw.len() != size {
                return Err(bad_bytes(id, "a different length than recorded"));
            }
            Ok(Some(raw))
        }
        "zstd-parts" => {
            let raw = super::kept_layout::unpack(&bytes, size, decompress)
                .map_err(|e| bad_bytes(id, &e))?;
            Ok(Some(raw))
        }
        other => Err(bad_bytes(id, &format!("unknown encoding \"{other}\""))),
    }
}

fn bad_bytes(id: i64, detail: &str) -> StoreError {
    StoreError::BadData(format!(
        "the kept bytes of message {id} cannot be read back: {detail}"
    ))
}

/// How many bytes message row `id` keeps: the original and the stored (compressed) length.
pub(super) fn sizes(conn: &Connection, id: i64) -> Result<Option<(u64, u64)>, StoreError> {
    let sizes: Option<(i64, i64)> = conn
        .prepare_cached("SELECT size, length(bytes) FROM message_bytes WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(sizes.map(|(size, stored)| (size.max(0) as u64, stored.max(0) as u64)))
}

impl Store {
    /// The original bytes of message `id` as they came, when they are kept (`None`: no such
    /// message, its bytes were dropped, or it never had any).
    pub fn message_raw(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        read(&self.conn, id).map_err(|e| self.located(e))
    }

    /// Drops the bytes of every message first received before `cutoff` (the config's
    /// `keep_mail` ago); the messages' records stay, marked with `now`. Returns how many
    /// messages lost their bytes.
    pub fn drop_mail_received_before(
        &mut self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (cutoff, stamp) = (timestamp(cutoff), timestamp(now));
        let mut dropped = 0;
        loop {
            let done = self
                .drop_chunk(&cutoff, &stamp)
                .map_err(|e| self.located(e))?;
            dropped += done;
            if done < DROP_CHUNK as usize {
                return Ok(dropped);
            }
        }
    }

    /// Drops the bytes of up to [`DROP_CHUNK`] messages, oldest first, in one transaction.
    /// Messages are walked in the order they arrived (their row ids) and the walk stops at
    /// the first one received at or after `cutoff`: when nothing is due, that is one row read,
    /// with no index on the arrival time for every message to update.
    fn drop_chunk(&mut self, cutoff: &str, stamp: &str) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut due: Vec<i64> = Vec::new();
        {
            let mut oldest = tx.prepare_cached(
                "SELECT b.id, m.received_at FROM message_bytes b JOIN messages m ON m.id = b.id \
                 ORDER BY b.id",
            )?;
            let mut rows = oldest.query([])?;
            while let Some(row) = rows.next()? {
                let received_at: String = row.get(1)?;
                if received_at.as_str() >= cutoff || due.len() as i64 >= DROP_CHUNK {
                    break;
                }
                due.push(row.get(0)?);
            }
        }
        for id in &due {
            tx.prepare_cached("DELETE FROM message_bytes WHERE id = ?1")?
                .execute([id])?;
            tx.prepare_cached("UPDATE messages SET bytes_dropped_at = ?2 WHERE id = ?1")?
                .execute(params![id, stamp])?;
        }
        tx.commit()?;
        Ok(due.len())
    }
}
