//! The README's mailbox configuration (`folder = "INBOX"`, `on_success = "move:Processed"`,
//! `on_failure = "move:Failed"`) with the shipped rules, run by the real `mailrules run` binary
//! against Dovecot 2.3, Cyrus IMAP 3.6 and Courier-IMAP 5.0, each a private server on a free
//! loopback port. Every test body runs once per server (`catch_up::cyrus`, `idle::courier`, …)
//! and checks what a user sees: the store has each effect once, INBOX is empty, the user's
//! Processed and Failed folders hold each message exactly once, new mail comes in promptly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::daemon_process::{trouble, Daemon};
use crate::support::dovecot::{wait_until, USER};
use crate::support::imap_server::{ImapServer, Kind};
use crate::support::rng::Rng;
use crate::support::workdir::root;

/// What one test may take before it counts as a hang (debug build, two shared cores, other
/// tests and other developers' builds beside it).
const TEST_LIMIT: Duration = Duration::from_secs(300);
/// Waiting for the whole mailbox to go through.
const DRAIN: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(30);
/// A message appended while the daemon idles must be in well before this: a server whose
/// IDLE only looks for new mail every 60 s (Cyrus without idled, Courier without
/// IMAP_ENHANCEDIDLE) misses it. Prompt IDLE takes well under a second.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Conversations in the waiting mailbox: a request and a follow-up each, and for every
/// eighth one also an attachment over the size limit, 192 messages in all.
const CONVERSATIONS: usize = 90;
/// `[limits] max_message_size`; the oversized messages are 100 KB.
const SIZE_LIMIT: &str = "64KB";

// ---- the mailbox ---------------------------------------------------------------------------

fn is_oversized(c: usize) -> bool {
    c.is_multiple_of(8)
}

/// The waiting mail, in arrival order, with each message's Message-ID (without <>): per
/// conversation a new request (the shipped helpdesk rules make a task and queue a reply), the
/// client's follow-up (a comment), and sometimes an attachment too large to be parsed (failed,
/// moved to Failed).
fn waiting_mail() -> Vec<(String, Vec<u8>)> {
    let mut mail = Vec::new();
    for c in 0..CONVERSATIONS {
        let from = format!("Client {c} <client{c}@example.org>");
        let request = format!("req-{c}@example.org");
        mail.push((
            request.clone(),
            message(
                &from,
                &format!("Printer {c} is broken"),
                &request,
                "",
                "Please help.\r\n",
            ),
        ));
        let follow_up = format!("fu-{c}@example.org");
        let thread = format!("In-Reply-To: <{request}>\r\nReferences: <{request}>\r\n");
        mail.push((
            follow_up.clone(),
            message(
                &from,
                &format!("Re: Printer {c} is broken"),
                &follow_up,
                &thread,
                "It is on fire now.\r\n",
            ),
        ));
        if is_oversized(c) {
            let big = format!("big-{c}@example.org");
            let body = "A photo of the printer, base64.\r\n".repeat(3_200);
            mail.push((
                big.clone(),
                message(&from, &format!("Photo {c}"), &big, "", &body),
            ));
        }
    }
    mail
}

fn message(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@acme.example\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra}\r\n{body}"
    )
    .into_bytes()
}

fn raws(mail: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    mail.iter().map(|(_, raw)| raw.clone()).collect()
}

/// Message-IDs of the waiting mail that end up in Processed and in Failed, sorted.
fn expected_folders() -> (Vec<String>, Vec<String>) {
    let (mut failed, mut processed): (Vec<String>, Vec<String>) = waiting_mail()
        .into_iter()
        .map(|(id, _)| id)
        .partition(|id| id.starts_with("big-"));
    processed.sort();
    failed.sort();
    (processed, failed)
}

/// What the shipped rules make of [`waiting_mail`].
#[derive(Debug, PartialEq, Eq)]
struct Effects {
    messages: i64,
    failed: i64,
    tasks: i64,
    comments: i64,
    outbox: i64,
}

impl Effects {
    fn expected() -> Effects {
        let c = CONVERSATIONS as i64;
        let big = (0..CONVERSATIONS).filter(|c| is_oversized(*c)).count() as i64;
        Effects {
            messages: 2 * c + big,
            failed: big,
            tasks: c,
            comments: c,
            outbox: c,
        }
    }
}

// ---- the daemon's directory ----------------------------------------------------------------

/// A config directory: the shipped mailrules.toml's settings and rules, the README's
/// `[[mailbox]]`, the store.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    /// `mailbox_extra`: more keys for the `[[mailbox]]`.
    fn new(server: &ImapServer, mailbox_extra: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        let rules = root().join("rules");
        // mailrules.toml as shipped, less [smtp]: nothing listens there, the replies stay
        // queued. The `[[mailbox]]` is the README's, on a loopback server without TLS.
        let config = format!(
            "store = \"mailrules.db\"\nrules = {rules:?}\nunmatched = \"thread\"\n\n\
             [staff]\ndomains = [\"acme.example\"]\n\n[limits]\nmax_message_size = \"{SIZE_LIMIT}\"\n\n\
             [[mailbox]]\nname = \"support\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             tls = \"none\"\nuser = \"{USER}\"\npassword_file = \"{password}\"\n\
             folder = \"INBOX\"\non_success = \"move:Processed\"\non_failure = \"move:Failed\"\n\
             {mailbox_extra}\n",
            rules = rules.display().to_string(),
            port = server.port(),
            password = server.password_file().display(),
        );
        std::fs::write(dir.path().join("mailrules.toml"), config).unwrap();
        Workdir { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("mailrules.toml")
    }

    fn store(&self) -> rusqlite::Connection {
        let store = rusqlite::Connection::open_with_flags(
            self.dir.path().join("mailrules.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        store.busy_timeout(Duration::from_secs(10)).unwrap();
        store
    }

    fn count(&self, sql: &str) -> i64 {
        self.store().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Messages recorded in the store (0 before the store exists).
    fn recorded(&self) -> i64 {
        if !self.dir.path().join("mailrules.db").exists() {
            return 0;
        }
        self.store()
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap_or(0)
    }

    /// Waits until at least `count` messages are recorded, looking every 5 ms.
    async fn wait_until_recorded(&self, count: i64) {
        let started = Instant::now();
        while self.recorded() < count {
            assert!(
                started.elapsed() < DRAIN,
                "{count} messages not recorded within {DRAIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn has_message(&self, id: &str) -> bool {
        self.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE message_id = '<{id}>' OR message_id = '{id}'"
        )) > 0
    }

    fn effects(&self) -> Effects {
        Effects {
            messages: self.count("SELECT COUNT(*) FROM messages"),
            failed: self.count("SELECT COUNT(*) FROM messages WHERE status = 'failed'"),
            tasks: self.count("SELECT COUNT(*) FROM tasks"),
            comments: self.count("SELECT COUNT(*) FROM comments"),
            outbox: self.count("SELECT COUNT(*) FROM outbox"),
        }
    }

    /// Each effect once: the expected counts, one record per message, one task per request,
    /// one comment per follow-up, one reply per task.
    fn assert_each_effect_once(&self, log: &str) {
        assert_eq!(self.effects(), Effects::expected(), "{log}");
        for (what, sql) in [
            (
                "message records",
                "SELECT COUNT(*) - COUNT(DISTINCT key) FROM messages",
            ),
            (
                "tasks",
                "SELECT COUNT(*) - COUNT(DISTINCT title) FROM tasks",
            ),
            (
                "replies",
                "SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM outbox",
            ),
            (
                "comments",
                "SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM comments",
            ),
        ] {
            assert_eq!(self.count(sql), 0, "{what} applied twice\n{log}");
        }
    }
}

// ---- what the user sees on the server ------------------------------------------------------

/// Waits until INBOX is empty and the user's Processed and Failed folders hold (at least) as
/// many messages as they should; tells how far it got if not.
async fn wait_until_acknowledged(server: &ImapServer) {
    let (processed, failed) = expected_folders();
    let (processed_folder, failed_folder) =
        (server.personal("Processed"), server.personal("Failed"));
    let started = Instant::now();
    loop {
        let counts = [
            server.count("INBOX").await,
            server.count(&processed_folder).await,
            server.count(&failed_folder).await,
        ];
        if counts[0] == 0 && counts[1] >= processed.len() && counts[2] >= failed.len() {
            return;
        }
        assert!(
            started.elapsed() < DRAIN,
            "not every message acknowledged within {DRAIN:?}: INBOX holds {}, {processed_folder} \
             {} of {}, {failed_folder} {} of {}",
            counts[0],
            counts[1],
            processed.len(),
            counts[2],
            failed.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// INBOX is empty; Processed and Failed hold exactly the expected Message-IDs, each once.
async fn assert_folders(server: &ImapServer, log: &str) {
    assert_eq!(server.count("INBOX").await, 0, "INBOX is empty\n{log}");
    let (processed, failed) = expected_folders();
    for (name, expected) in [("Processed", processed), ("Failed", failed)] {
        let folder = server.personal(name);
        let mut ids = server.message_ids(&folder).await;
        ids.sort();
        let twice: BTreeMap<&String, usize> = ids
            .iter()
            .fold(BTreeMap::new(), |mut seen, id| {
                *seen.entry(id).or_default() += 1;
                seen
            })
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(
            twice.is_empty(),
            "messages more than once in {folder}: {twice:?}\n{log}"
        );
        assert_eq!(ids, expected, "the messages in {folder}\n{log}");
    }
}

/// SIGTERM: the daemon finishes what it holds and exits 0.
fn terminate_cleanly(daemon: &mut Daemon) {
    let status = daemon.terminate(WAIT);
    assert!(status.success(), "{status}\n{}", trouble(&daemon.log()));
}

/// Runs `test`, failing it if it takes longer than [`TEST_LIMIT`]: a hang must fail, not
/// block the test run. Prints how long it took.
async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    let started = Instant::now();
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {TEST_LIMIT:?}"));
    let name = std::thread::current().name().unwrap_or("").to_string();
    eprintln!("{name} took {:?}", started.elapsed());
}

/// A server whose INBOX holds [`waiting_mail`].
async fn server_with_waiting_mail(kind: Kind) -> ImapServer {
    let server = tokio::task::block_in_place(|| ImapServer::start(kind));
    let started = Instant::now();
    server.append_all("INBOX", &raws(&waiting_mail())).await;
    eprintln!("{kind:?}: appended in {:?}", started.elapsed());
    server
}

// ---- the tests, once per server ------------------------------------------------------------

/// Defines, for each test body `name(kind)`, the tests `name::dovecot`, `name::cyrus` and
/// `name::courier`.
macro_rules! on_each_server {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::Kind;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dovecot() {
                super::bounded(super::$name(Kind::Dovecot)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cyrus() {
                super::bounded(super::$name(Kind::Cyrus)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn courier() {
                super::bounded(super::$name(Kind::Courier)).await;
            }
        }
    )*};
}

on_each_server!(catch_up, idle, sigkill_during_catch_up);

/// (a) The mail that waited while the daemon was down is all processed: each effect once in
/// the store, INBOX empty, each message once in Processed or Failed.
async fn catch_up(kind: Kind) {
    let server = server_with_waiting_mail(kind).await;
    let work = Workdir::new(&server, "");
    let started = Instant::now();
    let mut daemon = Daemon::start(&work.config());
    wait_until_acknowledged(&server).await;
    eprintln!("{kind:?}: caught up in {:?}", started.elapsed());
    terminate_cleanly(&mut daemon);
    let log = trouble(&daemon.log());
    work.assert_each_effect_once(&log);
    assert_folders(&server, &log).await;
}

/// (b) A message that arrives while the daemon idles is committed and moved promptly, also
/// after the server was restarted under the daemon.
async fn idle(kind: Kind) {
    let mut server = tokio::task::block_in_place(|| ImapServer::start(kind));
    let work = Workdir::new(&server, "");
    let mut daemon = Daemon::start(&work.config());
    daemon.wait_for_log("(IDLE)", 1, WAIT).await;
    let processed = server.personal("Processed");
    for round in ["first", "after-restart"] {
        // Caught up (the folders exist, nothing waits): the daemon goes into IDLE now.
        wait_until(WAIT, "the daemon caught up", || async {
            server.count("INBOX").await == 0
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let id = format!("idle-{round}@example.org");
        let from = "Someone <someone@example.org>";
        let started = Instant::now();
        server
            .append("INBOX", &message(from, "Idle test", &id, "", "Hello.\r\n"))
            .await;
        wait_until(
            IDLE_LIMIT,
            "the new message committed and moved while idling",
            || async {
                work.has_message(&id) && server.message_ids(&processed).await.contains(&id)
            },
        )
        .await;
        eprintln!("{kind:?}: {round} message in after {:?}", started.elapsed());
        if round == "first" {
            // Leaving IDLE with the search and fetch written behind DONE worked the first
            // time: no session ended over it.
            assert!(
                !daemon.log().contains("connected again"),
                "{}",
                trouble(&daemon.log())
            );
            tokio::task::block_in_place(|| server.restart());
            // The daemon notices, reconnects with backoff and idles again.
            daemon.wait_for_log("connected again", 1, DRAIN).await;
        }
    }
    terminate_cleanly(&mut daemon);
    let ids = server.message_ids(&processed).await;
    assert_eq!(
        ids,
        ["idle-first@example.org", "idle-after-restart@example.org"],
        "{}",
        trouble(&daemon.log())
    );
}

/// (c) SIGKILL at random moments while the daemon works through the waiting mail, a restart
/// each time: at the end each effect exists once and no message is twice on the server.
/// `batch_size = 20` (default 200, more than the whole mailbox) makes the catch-up a series of
/// commit-then-acknowledge steps for the kills to fall between.
async fn sigkill_during_catch_up(kind: Kind) {
    const KILLS: usize = 6;
    let server = server_with_waiting_mail(kind).await;
    let work = Workdir::new(&server, "batch_size = 20");
    let total = Effects::expected().messages;
    let mut rng = Rng::from_env_or_clock();
    let mut logs = Vec::new();
    let mut kills = 0;
    while kills < KILLS {
        let mut daemon = Daemon::start(&work.config());
        // Each kill once this run has committed a batch: every other one within 15 ms of
        // the commit, while that batch is being acknowledged (a MOVE, or on Courier a UID COPY
        // then a UID EXPUNGE), the others at a random moment of the next 100 ms, anywhere in
        // fetching, applying, committing or acknowledging. The whole mailbox takes well under
        // a second on Dovecot (debug build), so the store is watched closely and nothing slow
        // comes between the moment and the kill.
        let at_least = (work.recorded() + 1).min(total);
        work.wait_until_recorded(at_least).await;
        let within = if kills % 2 == 0 { 15 } else { 100 };
        tokio::time::sleep(rng.millis(0, within)).await;
        daemon.kill();
        logs.push(daemon.log());
        if server.count("INBOX").await == 0 {
            break; // it was done before the kill; kill no more
        }
        kills += 1;
        eprintln!(
            "{kind:?}: kill {kills} at {} of {total} recorded",
            work.recorded()
        );
    }
    let mut daemon = Daemon::start(&work.config());
    wait_until_acknowledged(&server).await;
    terminate_cleanly(&mut daemon);
    logs.push(daemon.log());
    let log = logs
        .iter()
        .map(|l| trouble(l))
        .collect::<Vec<_>>()
        .join("\n---- next run ----\n");
    assert!(
        kills >= 1,
        "no kill landed before the mailbox was done\n{log}"
    );
    eprintln!("{kind:?}: {kills} kill(s) landed");
    work.assert_each_effect_once(&log);
    assert_folders(&server, &log).await;
}
