//! The zstd dictionary that kept mail is compressed with: trained once on the store's own
//! mail (the text that `kept_layout` compresses, never the decoded attachments), shared with
//! the preparing threads, stored in `mail_dictionaries` with the first row that uses it, and
//! read back by id for every row that names it.
//!
//! Why: headers, signatures and quoted boilerplate repeat from message to message, but zstd
//! compresses each message alone and relearns them every time. With a dictionary made of them
//! it finds them at once: the kept bytes are smaller and level 1 compresses them in less CPU
//! (BENCHMARKS.md, "Session 7").
//!
//! How it reaches the preparing threads: a [`MailDictionary`] handle (shared by the pipeline's
//! preparers) holds the dictionary once there is one. Until then the preparing threads hand it
//! the head of each text they compress; the thread that brings the [`TRAIN_AFTER`]th trains the
//! dictionary itself (pure work, no SQL) and puts it in the handle, so that every message
//! prepared after that uses it. The store writes a dictionary (`INSERT` if its digest is new)
//! in the same transaction as the first row that names it: a row never refers to a dictionary
//! that is not stored, and a dictionary is never changed once stored.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest as _, Sha256};

use super::StoreError;

/// Texts collected before a dictionary is trained: 500 heads of 4 KiB made as good a
/// dictionary as 1,000 whole messages (BENCHMARKS.md, "Session 7").
pub const TRAIN_AFTER: usize = 500;
/// Bytes of each text used for training: the head, where the headers that repeat are.
const SAMPLE_HEAD: usize = 4 << 10;
/// The dictionary's size (zstd's own tool defaults to 110 KiB); 64 KiB is the size measured.
const DICTIONARY_SIZE: usize = 64 << 10;

/// A trained dictionary: its bytes and their SHA-256, by which the store finds it again.
#[derive(Clone, PartialEq, Eq)]
pub struct TrainedDictionary {
    digest: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for TrainedDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TrainedDictionary({}, {} bytes)",
            self.digest,
            self.bytes.len()
        )
    }
}

impl TrainedDictionary {
    /// A dictionary trained on `samples`; `None` when zstd cannot make one of them (too few or
    /// too little text).
    pub fn train<S: AsRef<[u8]>>(samples: &[S]) -> Option<TrainedDictionary> {
        let heads: Vec<&[u8]> = samples
            .iter()
            .map(|s| {
                let s = s.as_ref();
                &s[..s.len().min(SAMPLE_HEAD)]
            })
            .collect();
        fast_cover(&heads).map(TrainedDictionary::from_bytes)
    }

    fn from_bytes(bytes: Vec<u8>) -> TrainedDictionary {
        TrainedDictionary {
            digest: sha256_hex(&bytes),
            bytes,
        }
    }

    pub(super) fn digest(&self) -> &str {
        &self.digest
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// zstd's fastCover trainer in one pass with fixed parameters. zstd's default trainer
/// (`ZDICT_trainFromBuffer`, which `zstd::dict::from_samples` wraps) tries four segment sizes
/// and compresses the samples with each result to choose: on 500 heads of our mail that took
/// 450 M instructions and about 10 MiB (which pushed the peak RSS with a 25 MiB attachment
/// over its limit), for a dictionary no better than this one's (BENCHMARKS.md, "Session 7").
/// k: segment size (the best of the four on our corpora was about 1,000); d: the length of
/// the matches it counts; f = 16: a frequency table of 2^16 entries (256 KiB) instead of 2^20.
fn fast_cover(samples: &[&[u8]]) -> Option<Vec<u8>> {
    let flat: Vec<u8> = samples.concat();
    let sizes: Vec<usize> = samples.iter().map(|s| s.len()).collect();
    let count = u32::try_from(sizes.len()).ok()?;
    let mut dictionary = vec![0u8; DICTIONARY_SIZE];
    let parameters = zstd_sys::ZDICT_fastCover_params_t {
        k: 1024,
        d: 8,
        f: 16,
        steps: 0,
        nbThreads: 0,
        splitPoint: 1.0,
        accel: 1,
        shrinkDict: 0,
        shrinkDictMaxRegression: 0,
        zParams: zstd_sys::ZDICT_params_t {
            compressionLevel: super::kept_mail::LEVEL,
            notificationLevel: 0,
            dictID: 0,
        },
    };
    // SAFETY: every pointer is to a live buffer of the length passed with it: `dictionary`
    // (DICTIONARY_SIZE bytes, written by zstd up to that length), `flat` (the samples one after
    // the other) and `sizes` (`count` lengths that add up to `flat.len()`). zstd keeps none of
    // them after it returns; the parameters are passed by value.
    let written = unsafe {
        zstd_sys::ZDICT_trainFromBuffer_fastCover(
            dictionary.as_mut_ptr().cast(),
            dictionary.len(),
            flat.as_ptr().cast(),
            sizes.as_ptr(),
            count,
            parameters,
        )
    };
    // SAFETY: a pure function of the number, which zstd returned.
    if unsafe { zstd_sys::ZDICT_isError(written) } != 0 || written > dictionary.len() {
        return None;
    }
    dictionary.truncate(written);
    Some(dictionary)
}

/// The store's dictionary for kept mail as the preparing threads see it (cheap to clone: one
/// handle is shared). Empty until one is trained or read from the store.
#[derive(Clone, Debug, Default)]
pub struct MailDictionary {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    current: RwLock<Option<Arc<TrainedDictionary>>>,
    training: Mutex<Training>,
}

#[derive(Debug, Default)]
struct Training {
    samples: Vec<Vec<u8>>,
    /// Training was tried (successfully or not): no more samples are collected.
    done: bool,
}

impl MailDictionary {
    /// A handle that collects samples to train a dictionary, starting with `samples` (the
    /// heads of mail the store kept without one): with enough of them already, the first
    /// message compressed trains it.
    pub fn with_samples(samples: Vec<Vec<u8>>) -> MailDictionary {
        let handle = MailDictionary::default();
        handle
            .shared
            .training
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .samples = samples;
        handle
    }

    fn with(dictionary: TrainedDictionary) -> MailDictionary {
        let handle = MailDictionary::default();
        handle.set(dictionary);
        handle
    }

    /// The dictionary to compress with now, if there is one.
    pub fn current(&self) -> Option<Arc<TrainedDictionary>> {
        self.shared
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, dictionary: TrainedDictionary) {
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(dictionary));
        self.shared
            .training
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .done = true;
    }

    /// Takes the head of a text compressed without a dictionary as a training sample; the
    /// caller that brings the last one trains the dictionary (on its own thread: it is a
    /// preparing thread, and the work is pure) and shares it.
    pub fn offer(&self, text: &[u8]) {
        let samples = {
            let mut training = self
                .shared
                .training
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if training.done {
                return;
            }
            training
                .samples
                .push(text[..text.len().min(SAMPLE_HEAD)].to_vec());
            if training.samples.len() < TRAIN_AFTER {
                return;
            }
            training.done = true;
            std::mem::take(&mut training.samples)
        };
        // When zstd cannot make a dictionary of this mail, it is not tried again in this
        // process: mail this alike compresses well without one.
        if let Some(dictionary) = TrainedDictionary::train(&samples) {
            self.set(dictionary);
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    crate::text::push_hex(&mut hex, &Sha256::digest(bytes));
    hex
}

/// The id of `dictionary` in the store, which writes it now when it is new (in the caller's
/// transaction, with the row that names it first).
pub(super) fn id_of(conn: &Connection, dictionary: &TrainedDictionary) -> Result<i64, StoreError> {
    if let Some(id) = conn
        .prepare_cached("SELECT id FROM mail_dictionaries WHERE digest = ?1")?
        .query_row([dictionary.digest()], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO mail_dictionaries (digest, created_at, bytes) VALUES (?1, ?2, ?3)",
    )?
    .execute(rusqlite::params![
        dictionary.digest(),
        super::timestamp(chrono::Utc::now()),
        dictionary.bytes()
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The store's newest dictionary, the one new mail is compressed with.
pub(super) fn newest(conn: &Connection) -> Result<Option<TrainedDictionary>, StoreError> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT bytes FROM mail_dictionaries ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(bytes.map(TrainedDictionary::from_bytes))
}

/// Dictionary `id`'s bytes, checked against their digest; `Err` says what is wrong with it
/// (the caller names the message).
pub(super) fn read(conn: &Connection, id: i64) -> Result<Result<Vec<u8>, String>, StoreError> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT digest, bytes FROM mail_dictionaries WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => Err(format!(
            "its compression dictionary {id} is missing from the store"
        )),
        Some((digest, bytes)) if sha256_hex(&bytes) != digest => Err(format!(
            "its compression dictionary {id} is damaged (its bytes do not match their SHA-256)"
        )),
        Some((_, bytes)) => Ok(bytes),
    })
}

/// The heads of the newest messages kept without a dictionary (up to [`TRAIN_AFTER`]), as
/// training samples: a store that has kept that many trains its dictionary with the next
/// message, however many runs of the program it took to receive them. Rows that cannot be
/// read are left out (`message show` reports them); large ones too (their head is all a
/// sample takes).
fn kept_heads(conn: &Connection) -> Result<Vec<Vec<u8>>, StoreError> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM message_bytes WHERE dictionary IS NULL AND encoding != 'plain' \
             AND size < ?1 ORDER BY id DESC LIMIT ?2",
        )?
        .query_map([SEED_MAX_SIZE, TRAIN_AFTER as i64], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut heads = Vec::with_capacity(ids.len());
    for id in ids {
        if let Ok(Some(mut raw)) = super::kept_mail::read(conn, id) {
            raw.truncate(SAMPLE_HEAD);
            heads.push(raw);
        }
    }
    Ok(heads)
}

/// Kept messages read back as training samples are smaller than this.
const SEED_MAX_SIZE: i64 = 1 << 20;

impl super::Store {
    /// The handle the preparing threads compress kept mail with: the store's newest
    /// dictionary, or, when it has none yet, the mail it kept so far as training samples.
    pub fn mail_dictionary(&self) -> Result<MailDictionary, StoreError> {
        let handle = match newest(&self.conn).map_err(|e| self.located(e))? {
            Some(dictionary) => MailDictionary::with(dictionary),
            None => {
                MailDictionary::with_samples(kept_heads(&self.conn).map_err(|e| self.located(e))?)
            }
        };
        Ok(handle)
    }
}
