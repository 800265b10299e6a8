//! Tests of the configuration: parsing, defaults, validation, secrets by reference.

use super::*;

#[test]
fn durations_and_sizes() {
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
    assert!(parse_duration("5 minutes").is_err());
    assert_eq!(parse_size("50MB").unwrap(), 50 << 20);
    assert_eq!(parse_size("1024").unwrap(), 1024);
}

#[test]
fn staff_is_matched_on_address_not_name() {
    let staff = Staff {
        domains: vec!["acme.example".into()],
        addresses: vec!["Boss@gmail.example".into()],
    };
    assert!(staff.is_staff("anna@ACME.example"));
    assert!(staff.is_staff("boss@gmail.example"));
    assert!(!staff.is_staff("anna@acme.example.evil.test"));
    assert!(!staff.is_staff("Anna ACME <x@evil.test>"));
}

#[test]
fn paths_are_relative_to_the_config_file() {
    let c = Config::from_str(
        "store = \"s.db\"\nrules = \"r\"\n",
        Path::new("/etc/mr/mailrules.toml"),
    )
    .unwrap();
    assert_eq!(c.store, Path::new("/etc/mr/s.db"));
    assert_eq!(c.rules, Path::new("/etc/mr/r"));
    assert_eq!(c.unmatched, Unmatched::Thread);
}

#[test]
fn mail_is_kept_forever_unless_keep_mail_says_otherwise() {
    let load = |text: &str| Config::from_str(text, Path::new("m.toml"));
    assert_eq!(load("").unwrap().keep_mail, KeepMail::Forever);
    assert_eq!(
        load("keep_mail = \"forever\"\n").unwrap().keep_mail,
        KeepMail::Forever
    );
    assert_eq!(
        load("keep_mail = \"365d\"\n").unwrap().keep_mail,
        KeepMail::For(Duration::from_secs(365 * 86_400))
    );
    assert_eq!(
        load("keep_mail = \"failed\"\n").unwrap().keep_mail,
        KeepMail::FailedOnly
    );
    let zero = load("keep_mail = \"0d\"\n").unwrap_err().to_string();
    assert!(zero.contains("leave it out to keep mail forever"), "{zero}");
    let bad = load("keep_mail = \"a year\"\n").unwrap_err().to_string();
    assert!(bad.contains("keep_mail: bad duration"), "{bad}");
    assert!(bad.contains("\"failed\""), "{bad}");
}

#[test]
fn syntax_errors_name_line_and_column() {
    let err = Config::from_str(
        "store = \"a\"\nunmatched = \"sometimes\"\n",
        Path::new("m.toml"),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("m.toml:2:"), "{text}");
}

#[test]
fn plain_text_connections_only_to_loopback() {
    let mk = |host: &str| {
        format!("[[mailbox]]\nname=\"a\"\nhost=\"{host}\"\ntls=\"none\"\nuser=\"u\"\n")
    };
    assert!(Config::from_str(&mk("127.0.0.1"), Path::new("m.toml")).is_ok());
    let err = Config::from_str(&mk("imap.example.com"), Path::new("m.toml")).unwrap_err();
    assert!(err.to_string().contains("loopback"));
}

#[test]
fn secrets_are_not_in_debug_output() {
    std::env::set_var("MAILRULES_TEST_SECRET_X", "hunter2");
    let src = PasswordSource::Env("MAILRULES_TEST_SECRET_X".into());
    assert_eq!(src.read("t").unwrap().as_deref(), Some("hunter2"));
    assert!(!format!("{src:?}").contains("hunter2"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "[[mailbox]]\nname = \"a\"\nhost = \"imap.example\"\nuser = \"u\"\n\
                on_success = \"archive\"\npoll_interval = \"soon\"\n\n\
                [[mailbox]]\nname = \"b\"\nhost = \"imap.example\"\nuser = \"u\"\n\
                on_failure = \"move:\"\n\n\
                [smtp]\nhost = \"smtp.example\"\nfrom = \"x@y\"\ntimeout = \"later\"\n";
    let err = Config::from_str(text, Path::new("/etc/mailrules/mailrules.toml")).unwrap_err();
    let message = err.to_string();
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 4, "{message}");
    assert!(lines
        .iter()
        .all(|l| l.starts_with("/etc/mailrules/mailrules.toml: ")));
    assert!(lines[0].contains("mailbox \"a\"") && lines[0].contains("archive"));
    assert!(lines[1].contains("mailbox \"a\"") && lines[1].contains("soon"));
    assert!(lines[2].contains("mailbox \"b\"") && lines[2].contains("move:"));
    assert!(lines[3].starts_with("/etc/mailrules/mailrules.toml: [smtp]: "));
}
