//! Filling a test Dovecot's INBOX with thousands of messages in well under a second, by
//! writing them into its Maildir directly instead of APPENDing them one by one.

use std::os::unix::fs::MetadataExt;

use super::dovecot::{Dovecot, USER};

/// Puts `raws` into INBOX in this order (UIDs ascending with it): each file is named after a
/// later second than the one before, which is the order Dovecot gives new Maildir files their
/// UIDs in. Checks the count over IMAP before returning.
pub async fn fill_inbox(dovecot: &Dovecot, raws: &[Vec<u8>]) {
    // A first login makes Dovecot create the Maildir with the owner it wants.
    let mut session = dovecot.session().await;
    let before = session.select("INBOX").await.unwrap().exists as usize;
    let maildir = dovecot.dir().join("mail").join(USER);
    let new = maildir.join("new");
    let owner = std::fs::metadata(&new).unwrap();
    let tmp = maildir.join("tmp");
    for (i, raw) in raws.iter().enumerate() {
        let name = format!("{}.M{i}P1.faults", 1_700_000_000 + i);
        // Written in tmp/, then renamed: the Maildir way, so Dovecot never sees half a file.
        let path = tmp.join(&name);
        std::fs::write(&path, raw).unwrap();
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::rename(&path, new.join(&name)).unwrap();
    }
    let now = session.select("INBOX").await.unwrap().exists as usize;
    session.logout().await.unwrap();
    assert_eq!(
        now,
        before + raws.len(),
        "Dovecot sees every message written"
    );
}
