//! team.md, "People": `user add | list | remove | passwd | token` through the built binary,
//! each with the bad input a person meets (unknown user, bad role, empty password, a user
//! added twice). Secrets appear nowhere but where they must.

use std::io::Write;
use std::process::{Output, Stdio};

use mailrules::people::Password;
use mailrules::store::Store;

use crate::support::workdir::Workdir;

/// Runs `mailrules ARGS` with `input` on standard input (a pipe, not a terminal).
fn with_stdin(w: &Workdir, args: &[&str], input: &str) -> Output {
    let mut child = w
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The command may refuse before reading (a duplicate): a closed pipe is fine then.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit 1 with a one-line-or-more diagnostic starting with `error:`; returns it.
fn user_error(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}\nstderr: {stderr}",
        text(&out.stdout)
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn add(w: &Workdir, email: &str, extra: &[&str], password: &str) -> Output {
    let mut args = vec!["user", "add", email];
    args.extend_from_slice(extra);
    with_stdin(w, &args, password)
}

fn store(w: &Workdir) -> Store {
    Store::open(&w.path("store.db")).unwrap()
}

fn password(text: &str) -> Password {
    Password::new(text.to_string()).unwrap()
}

/// Everything the store keeps on disk, database and write-ahead log.
fn store_bytes(w: &Workdir) -> Vec<u8> {
    let mut bytes = std::fs::read(w.path("store.db")).unwrap();
    if let Ok(wal) = std::fs::read(w.path("store.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn an_added_user_is_listed_and_their_password_works_but_is_not_stored() {
    let w = Workdir::with_rules(&[]);
    let out = add(
        &w,
        "Anna@Acme.example",
        &["--name", "Анна Петрова", "--role", "admin"],
        "correct horse battery\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "added anna@acme.example (admin)\n");
    assert!(!text(&out.stderr).contains("correct horse"));

    let listed = w.ok(&["user", "list"]);
    let row = listed.lines().nth(1).unwrap();
    for cell in ["anna@acme.example", "Анна Петрова", "admin"] {
        assert!(row.contains(cell), "{listed}");
    }
    let json = w.json(&["user", "list"]);
    assert_eq!(json[0]["email"], "anna@acme.example");
    assert_eq!(json[0]["name"], "Анна Петрова");
    assert_eq!(json[0]["role"], "admin");
    assert_eq!(json[0]["token"], false);
    assert!(json[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(json[0].get("password_hash").is_none(), "{json:#}");

    let store = store(&w);
    assert!(store
        .verify_password("anna@acme.example", &password("correct horse battery"))
        .unwrap()
        .is_some());
    assert!(store
        .verify_password("anna@acme.example", &password("correct horse"))
        .unwrap()
        .is_none());
    drop(store);
    assert!(!contains(&store_bytes(&w), "correct horse"));
}

#[test]
fn the_default_role_is_agent_and_no_users_is_said_plainly() {
    let w = Workdir::with_rules(&[]);
    assert!(w.ok(&["user", "list"]).starts_with("no users"));
    assert_eq!(w.json(&["user", "list"]), serde_json::json!([]));
    assert!(add(&w, "bob@acme.example", &[], "pw\n").status.success());
    assert_eq!(w.json(&["user", "list"])[0]["role"], "agent");
}

#[test]
fn a_user_added_twice_is_refused_and_keeps_their_password() {
    let w = Workdir::with_rules(&[]);
    assert!(add(&w, "anna@acme.example", &[], "first\n")
        .status
        .success());
    let err = user_error(&add(
        &w,
        "ANNA@acme.example",
        &["--role", "admin"],
        "second\n",
    ));
    assert!(
        err.contains("already exists") && err.contains("user passwd"),
        "{err}"
    );
    let json = w.json(&["user", "list"]);
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["role"], "agent");
    let store = store(&w);
    assert!(store
        .verify_password("anna@acme.example", &password("first"))
        .unwrap()
        .is_some());
}

#[test]
fn a_bad_role_is_a_usage_error_naming_the_roles() {
    let w = Workdir::with_rules(&[]);
    let out = add(&w, "anna@acme.example", &["--role", "boss"], "pw\n");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.starts_with("error:"), "{err}");
    for role in ["viewer", "agent", "admin"] {
        assert!(err.contains(role), "{err}");
    }
    assert!(w.ok(&["user", "list"]).starts_with("no users"));
}

#[test]
fn an_empty_password_or_a_bad_email_adds_nobody() {
    let w = Workdir::with_rules(&[]);
    for input in ["", "\n", "\r\n"] {
        let err = user_error(&add(&w, "anna@acme.example", &[], input));
        assert!(err.contains("password is empty"), "{input:?}: {err}");
    }
    let err = user_error(&add(&w, "anna", &[], "pw\n"));
    assert!(err.contains("not an email address"), "{err}");
    let err = user_error(&add(&w, "anna@acme.example", &["--name", " "], "pw\n"));
    assert!(err.contains("name"), "{err}");
    assert!(w.ok(&["user", "list"]).starts_with("no users"));
}

#[test]
fn unknown_users_cannot_be_removed_given_a_password_or_a_token() {
    let w = Workdir::with_rules(&[]);
    for command in ["remove", "passwd", "token"] {
        let out = with_stdin(&w, &["user", command, "ghost@acme.example"], "pw\n");
        let err = user_error(&out);
        assert!(
            err.contains("ghost@acme.example") && err.contains("mailrules user list"),
            "{command}: {err}"
        );
        assert!(out.stdout.is_empty(), "{command}");
    }
}

#[test]
fn passwd_replaces_the_password() {
    let w = Workdir::with_rules(&[]);
    assert!(add(&w, "anna@acme.example", &[], "old one\n")
        .status
        .success());
    let out = with_stdin(&w, &["user", "passwd", "anna@acme.example"], "new one\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("anna@acme.example"));
    let err = user_error(&with_stdin(
        &w,
        &["user", "passwd", "anna@acme.example"],
        "\n",
    ));
    assert!(err.contains("password is empty"), "{err}");
    let store = store(&w);
    assert!(store
        .verify_password("anna@acme.example", &password("old one"))
        .unwrap()
        .is_none());
    assert!(store
        .verify_password("anna@acme.example", &password("new one"))
        .unwrap()
        .is_some());
}

#[test]
fn a_token_is_printed_once_stored_hashed_and_replaced_by_the_next() {
    let w = Workdir::with_rules(&[]);
    assert!(add(&w, "anna@acme.example", &["--role", "viewer"], "pw\n")
        .status
        .success());
    let first = w.ok(&["user", "token", "anna@acme.example"]);
    let first = first.strip_suffix('\n').unwrap();
    assert!(
        first.starts_with("mrt_") && !first.contains(char::is_whitespace),
        "{first}"
    );
    assert_eq!(w.json(&["user", "list"])[0]["token"], true);
    assert!(!w.ok(&["user", "list"]).contains(first));
    assert!(!contains(&store_bytes(&w), first));
    let user = store(&w).verify_token(first).unwrap().unwrap();
    assert_eq!(user.email, "anna@acme.example");
    assert_eq!(user.role, mailrules::people::Role::Viewer);

    let second = w.ok(&["user", "token", "anna@acme.example"]);
    assert_ne!(second.trim(), first);
    let store = store(&w);
    assert!(store.verify_token(first).unwrap().is_none());
    assert!(store.verify_token(second.trim()).unwrap().is_some());
}

#[test]
fn a_removed_user_is_gone_with_their_token() {
    let w = Workdir::with_rules(&[]);
    assert!(add(&w, "anna@acme.example", &[], "pw\n").status.success());
    assert!(add(&w, "bob@acme.example", &[], "pw\n").status.success());
    let token = w.ok(&["user", "token", "anna@acme.example"]);
    assert_eq!(
        w.ok(&["user", "remove", "Anna@acme.example"]),
        "removed anna@acme.example\n"
    );
    let json = w.json(&["user", "list"]);
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["email"], "bob@acme.example");
    assert!(store(&w).verify_token(token.trim()).unwrap().is_none());
    let err = user_error(&w.run(&["user", "remove", "anna@acme.example"]));
    assert!(err.contains("no user"), "{err}");
}
