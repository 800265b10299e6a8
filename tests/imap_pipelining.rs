//! The daemon catching up with a large folder at the server's pace: each batch handed on as
//! soon as it is fetched, its acknowledgement sent together with the next fetch. Every
//! message must still be processed once and acknowledged (moved) exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::daemon_process::Daemon;
use crate::support::dovecot::{message, wait_until, Dovecot, USER};
use crate::support::imap_transcript::{Side, Transcript};

/// Hundreds of messages through a debug build on a shared machine.
const LONG_WAIT: Duration = Duration::from_secs(180);
const WAIT: Duration = Duration::from_secs(30);

const RULES: &str = r#"
[[rule]]
name = "request"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
"#;

/// A directory with the rules and a config for one mailbox on `dovecot` through
/// `transcript`, with `extra` mailbox settings (`key = value` lines).
fn workdir(
    dovecot: &Dovecot,
    transcript: &Transcript,
    extra: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/10-test.toml"), RULES).unwrap();
    let config = dir.path().join("mailrules.toml");
    std::fs::write(
        &config,
        format!(
            "store = \"mailrules.db\"\nrules = \"rules\"\n\n[[mailbox]]\nname = \"support\"\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"{USER}\"\n\
             password_file = \"{}\"\n{extra}",
            transcript.port,
            dovecot.password_file().display()
        ),
    )
    .unwrap();
    (dir, config)
}

/// The UIDs of an IMAP set such as `1:3,7`.
fn uids_of(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|part| match part.split_once(':') {
            Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()).collect(),
            None => vec![part.parse::<u32>().unwrap()],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_folder_is_processed_completely_and_each_message_moved_exactly_once() {
    const N: usize = 1000;
    let dovecot = Dovecot::start();
    let mail: Vec<Vec<u8>> = (1..=N)
        .map(|i| message(&format!("big-{i}"), &format!("request {i}"), ""))
        .collect();
    dovecot.append_all("INBOX", &mail).await;
    let transcript = Transcript::start(dovecot.port).await;
    let (dir, config) = workdir(&dovecot, &transcript, "batch_size = 50\n");

    let mut daemon = Daemon::start(&config);
    wait_until(LONG_WAIT, "every message moved to Processed", || async {
        dovecot.count("Processed").await == N
    })
    .await;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());

    assert_eq!(dovecot.count("INBOX").await, 0, "{}", daemon.log());
    let mut moved = dovecot.message_ids("Processed").await;
    moved.sort();
    moved.dedup();
    assert_eq!(moved.len(), N, "no message moved twice");
    let store = rusqlite::Connection::open(dir.path().join("mailrules.db")).unwrap();
    let (rows, keys, tasks): (i64, i64, i64) = store
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT key), \
             (SELECT COUNT(*) FROM tasks) FROM messages WHERE status = 'applied'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((rows, keys, tasks), (N as i64, N as i64, N as i64));

    // What the daemon said to the server: one MOVE per UID, and moves sent without waiting
    // for the answer before the next fetch went out.
    let lines = transcript.lines();
    let mut moves: BTreeMap<u32, usize> = BTreeMap::new();
    let mut fetched_before_answer = 0;
    for (at, (side, line)) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split(' ').collect();
        if *side != Side::Client || words.get(1..3) != Some(&["UID", "MOVE"][..]) {
            continue;
        }
        for uid in uids_of(words[3]) {
            *moves.entry(uid).or_default() += 1;
        }
        let tag = format!("{} ", words[0]);
        let answered = lines[at..]
            .iter()
            .position(|(side, l)| *side == Side::Server && l.starts_with(&tag))
            .expect("every MOVE is answered");
        if lines[at..at + answered]
            .iter()
            .any(|(side, l)| *side == Side::Client && l.contains(" UID FETCH "))
        {
            fetched_before_answer += 1;
        }
    }
    assert_eq!(moves.len(), N, "every UID moved");
    assert!(
        moves.values().all(|&times| times == 1),
        "a UID moved more than once: {:?}",
        moves.iter().filter(|(_, &t)| t > 1).collect::<Vec<_>>()
    );
    assert!(
        fetched_before_answer > 0,
        "no MOVE was pipelined with the next FETCH"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn news_is_fetched_with_the_search_behind_done_and_mail_past_skipped_uids_is_found() {
    let dovecot = Dovecot::start();
    // UIDs 1 to 3 are used and gone before the daemon starts: the first new message gets UID
    // 4, past the two UIDs (batch_size) the watcher fetches with its search from UID 1.
    let gone: Vec<Vec<u8>> = (1..=3)
        .map(|i| message(&format!("gone-{i}"), "deleted before the daemon starts", ""))
        .collect();
    dovecot.append_all("INBOX", &gone).await;
    let mut session = dovecot.session().await;
    session.select("INBOX").await.unwrap();
    drop(session.store("1:*", "+FLAGS (\\Deleted)").await.unwrap());
    drop(session.expunge().await.unwrap());
    session.logout().await.unwrap();
    assert_eq!(dovecot.count("INBOX").await, 0);

    let transcript = Transcript::start(dovecot.port).await;
    let (dir, config) = workdir(
        &dovecot,
        &transcript,
        "batch_size = 2\npoll_interval = \"1h\"\n",
    );
    let mut daemon = Daemon::start(&config);
    let idling = || {
        transcript
            .lines()
            .iter()
            .any(|(side, line)| *side == Side::Client && line.ends_with(" IDLE"))
    };
    wait_until(WAIT, "the daemon to idle", || async { idling() }).await;

    dovecot
        .append("INBOX", &message("past-gap", "after skipped UIDs", ""))
        .await;
    wait_until(WAIT, "the message past the gap moved", || async {
        dovecot.count("Processed").await == 1
    })
    .await;
    // More than a batch arriving while the daemon idles: the first batch comes with the
    // search, the rest is fetched as always.
    let burst: Vec<Vec<u8>> = (1..=5)
        .map(|i| message(&format!("burst-{i}"), &format!("request {i}"), ""))
        .collect();
    dovecot.append_all("INBOX", &burst).await;
    wait_until(WAIT, "the burst moved", || async {
        dovecot.count("Processed").await == 6
    })
    .await;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());

    let mut moved = dovecot.message_ids("Processed").await;
    moved.sort();
    let mut expected: Vec<String> = std::iter::once("past-gap".to_string())
        .chain((1..=5).map(|i| format!("burst-{i}")))
        .map(|id| format!("{id}@example.org"))
        .collect();
    expected.sort();
    assert_eq!(
        moved, expected,
        "each message moved once, none of the deleted ones"
    );
    let store = rusqlite::Connection::open(dir.path().join("mailrules.db")).unwrap();
    let tasks: i64 = store
        .query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tasks, 6, "{}", daemon.log());

    // After IDLE, a UID FETCH went out before the server had answered the UID SEARCH.
    let lines = transcript.lines();
    let fetched_with_search = lines.iter().enumerate().any(|(at, (side, line))| {
        let words: Vec<&str> = line.split(' ').collect();
        if *side != Side::Client || words.get(1..3) != Some(&["UID", "SEARCH"][..]) {
            return false;
        }
        let tag = format!("{} ", words[0]);
        lines[at..]
            .iter()
            .take_while(|(side, l)| !(*side == Side::Server && l.starts_with(&tag)))
            .any(|(side, l)| *side == Side::Client && l.contains(" UID FETCH "))
    });
    assert!(
        fetched_with_search,
        "no UID FETCH was sent with a UID SEARCH"
    );
    // Leaving IDLE and asking for the new mail are one round trip: the search and the fetch
    // are written right behind DONE, before the server's answer to IDLE.
    let client: Vec<&str> = lines
        .iter()
        .filter(|(side, _)| *side == Side::Client)
        .map(|(_, line)| line.as_str())
        .collect();
    let with_done = client.windows(3).any(|three| {
        three[0] == "DONE"
            && three[1].starts_with("N1 UID SEARCH UID ")
            && three[2].starts_with("N2 UID FETCH ")
    });
    assert!(with_done, "no search and fetch behind DONE: {client:?}");
    for (side, line) in &lines {
        if *side == Side::Server && (line.starts_with("N1 ") || line.starts_with("N2 ")) {
            assert!(line.contains(" OK "), "{line}");
        }
    }
    // The server's answer to the daemon's own MOVE ("* 0 RECENT") is no news: one search
    // after it, then IDLE again.
    let commands: Vec<&str> = lines
        .iter()
        .filter(|(side, _)| *side == Side::Client)
        .filter_map(|(_, line)| line.split_once(' ').map(|(_, command)| command))
        .collect();
    let moved = commands
        .iter()
        .position(|c| c.starts_with("UID MOVE 4 "))
        .expect("the message past the gap was moved");
    let idle = moved
        + commands[moved..]
            .iter()
            .position(|c| *c == "IDLE")
            .expect("IDLE after the move");
    let searches = commands[moved..idle]
        .iter()
        .filter(|c| c.starts_with("UID SEARCH"))
        .count();
    assert_eq!(searches, 1, "{:?}", &commands[moved..idle]);
}

/// A server that wants DONE answered before the next command (here the proxy turns the
/// search written behind DONE into a command Dovecot refuses) costs that wake a round trip,
/// not the session: the search goes out on its own, then and after every later wake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_commands_behind_done_gets_them_after_its_answer() {
    let dovecot = Dovecot::start();
    let transcript = Transcript::start_rewriting(dovecot.port, |line| {
        line.starts_with("N1 UID SEARCH ")
            .then(|| "N1 XREFUSED-BEHIND-DONE".to_string())
    })
    .await;
    let (_dir, config) = workdir(&dovecot, &transcript, "poll_interval = \"1h\"\n");
    let mut daemon = Daemon::start(&config);
    let idles = || {
        transcript
            .lines()
            .iter()
            .filter(|(side, line)| *side == Side::Client && line.ends_with(" IDLE"))
            .count()
    };
    for (round, id) in ["refused-1", "refused-2"].iter().enumerate() {
        wait_until(WAIT, "the daemon to idle", || async { idles() > round }).await;
        dovecot
            .append("INBOX", &message(id, "while idling", ""))
            .await;
        wait_until(WAIT, "the message moved", || async {
            dovecot.count("Processed").await == round + 1
        })
        .await;
    }
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());
    assert!(
        !daemon.log().contains("connected again"),
        "{}",
        daemon.log()
    );

    let lines = transcript.lines();
    let refused: Vec<&String> = lines
        .iter()
        .filter(|(side, line)| *side == Side::Server && line.starts_with("N1 "))
        .map(|(_, line)| line)
        .collect();
    assert_eq!(refused.len(), 1, "tried behind DONE once: {refused:?}");
    assert!(refused[0].starts_with("N1 BAD"), "{refused:?}");
    let searches = lines
        .iter()
        .filter(|(side, line)| *side == Side::Client && line.contains(" UID SEARCH UID "))
        .count();
    assert!(searches >= 2, "a search of its own after each wake");
    let mut moved = dovecot.message_ids("Processed").await;
    moved.sort();
    assert_eq!(moved, ["refused-1@example.org", "refused-2@example.org"]);
}

/// A person reading the watched folder (flags another client changes) is no news: the daemon
/// stays in IDLE instead of searching after every message read, and new mail still wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_another_client_changes_do_not_end_idle() {
    let dovecot = Dovecot::start();
    dovecot
        .append("INBOX", &message("read-me", "kept in the folder", ""))
        .await;
    let transcript = Transcript::start(dovecot.port).await;
    let (dir, config) = workdir(
        &dovecot,
        &transcript,
        "on_success = \"flag\"\npoll_interval = \"1h\"\n",
    );
    let tasks = || {
        rusqlite::Connection::open(dir.path().join("mailrules.db"))
            .and_then(|store| store.query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0)))
            .unwrap_or(0i64)
    };
    let client_lines = |wanted: &str| {
        transcript
            .lines()
            .iter()
            .filter(|(side, line)| *side == Side::Client && line.ends_with(wanted))
            .count()
    };
    let mut daemon = Daemon::start(&config);
    wait_until(WAIT, "the waiting message processed", || async {
        tasks() == 1
    })
    .await;
    wait_until(WAIT, "the daemon to idle", || async {
        client_lines(" IDLE") > 0
    })
    .await;
    let left_idle = client_lines("DONE");

    let mut reader = dovecot.session().await;
    reader.select("INBOX").await.unwrap();
    drop(reader.store("1", "+FLAGS (\\Flagged)").await.unwrap());
    reader.logout().await.unwrap();
    wait_until(WAIT, "the server to tell the idling daemon", || async {
        transcript.lines().iter().any(|(side, line)| {
            *side == Side::Server
                && line.starts_with("* 1 FETCH (FLAGS")
                && line.contains("Flagged")
        })
    })
    .await;
    // Leaving IDLE would follow the server's line at once; give it ample time to.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        client_lines("DONE"),
        left_idle,
        "left IDLE for a flag change"
    );

    dovecot
        .append("INBOX", &message("new-one", "after the flag change", ""))
        .await;
    wait_until(WAIT, "the new message processed", || async { tasks() == 2 }).await;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());
}
