//! The SMTP side against a real server: delivery, encoding on the wire, TLS with certificate
//! checks, and how server answers are classified.

use crate::support::smtp as smtp_support;

use chrono::{TimeZone, Utc};
use mailrules::config::TlsMode;
use mailrules::smtp::{MailKind, Mailer, OutgoingMail, SmtpError};
use smtp_support::{free_port, smtp_config, ServerOptions, ServerTls, SmtpServer, TestCert};

fn reply_to_ivan() -> OutgoingMail {
    OutgoingMail {
        kind: MailKind::Reply,
        to: "ivan@client.example".into(),
        cc: Vec::new(),
        subject: "Re: Не печатает принтер в бухгалтерии [#7]".into(),
        body: "Здравствуйте!\n\nВаша заявка принята, номер 7.\nСлужба поддержки ACME".into(),
        message_id: "5f3a.7@acme.example".into(),
        in_reply_to: Some("CAB+q1w2e3@mail.client.example".into()),
        references: vec!["CAB+q1w2e3@mail.client.example".into()],
        date: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
    }
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).unwrap()
}

#[tokio::test]
async fn a_reply_arrives_with_its_headers_and_russian_text_intact() {
    let server = SmtpServer::start();
    let mailer = Mailer::new(&server.config(TlsMode::None)).unwrap();
    mailer.send(&reply_to_ivan()).await.unwrap();

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let msg = parse(&messages[0]);
    assert_eq!(
        msg.subject(),
        Some("Re: Не печатает принтер в бухгалтерии [#7]")
    );
    let from = msg.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Поддержка ACME"));
    assert_eq!(from.address(), Some("support@acme.example"));
    let to = msg.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("ivan@client.example"));
    assert_eq!(msg.message_id(), Some("5f3a.7@acme.example"));
    assert_eq!(
        msg.in_reply_to().as_text(),
        Some("CAB+q1w2e3@mail.client.example")
    );
    assert_eq!(
        msg.references().as_text(),
        Some("CAB+q1w2e3@mail.client.example")
    );
    assert_eq!(
        msg.header("Auto-Submitted").and_then(|h| h.as_text()),
        Some("auto-replied")
    );
    assert!(msg.date().is_some());
    assert_eq!(
        msg.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
        "Здравствуйте!\n\nВаша заявка принята, номер 7.\nСлужба поддержки ACME"
    );
}

#[tokio::test]
async fn a_5xx_answer_is_permanent_and_carries_the_servers_words() {
    let server = SmtpServer::start_with(
        ServerOptions {
            reject: Some("550 5.1.1 <ivan@client.example>: no such user".into()),
            ..ServerOptions::default()
        },
        None,
    );
    let mailer = Mailer::new(&server.config(TlsMode::None)).unwrap();
    let err = mailer.send(&reply_to_ivan()).await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "550 5.1.1 <ivan@client.example>: no such user"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_4xx_answer_is_transient() {
    let server = SmtpServer::start_with(
        ServerOptions {
            reject: Some("451 4.7.1 greylisted, try again later".into()),
            reject_times: Some(1),
            ..ServerOptions::default()
        },
        None,
    );
    let mailer = Mailer::new(&server.config(TlsMode::None)).unwrap();
    let err = mailer.send(&reply_to_ivan()).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        matches!(err, SmtpError::Rejected { code: 451, .. }),
        "{err:?}"
    );
    // The greylisting server takes the second try.
    mailer.send(&reply_to_ivan()).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure() {
    let mailer = Mailer::new(&smtp_config(free_port(), TlsMode::None)).unwrap();
    let err = mailer.send(&reply_to_ivan()).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(matches!(err, SmtpError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn starttls_and_implicit_tls_trust_the_servers_certificate_in_ca_file() {
    let cert = TestCert::new();
    for (tls, server_tls) in [
        (TlsMode::Starttls, ServerTls::Starttls),
        (TlsMode::Implicit, ServerTls::Implicit),
    ] {
        let server = SmtpServer::start_with(
            ServerOptions {
                tls: server_tls,
                ..ServerOptions::default()
            },
            Some(&cert),
        );
        let mut cfg = server.config(tls);
        cfg.ca_file = Some(cert.cert.clone());
        Mailer::new(&cfg)
            .unwrap()
            .send(&reply_to_ivan())
            .await
            .unwrap();
        assert_eq!(server.messages().len(), 1, "{tls:?}");
    }
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_without_ca_file() {
    let cert = TestCert::new();
    for (tls, server_tls) in [
        (TlsMode::Starttls, ServerTls::Starttls),
        (TlsMode::Implicit, ServerTls::Implicit),
    ] {
        let server = SmtpServer::start_with(
            ServerOptions {
                tls: server_tls,
                ..ServerOptions::default()
            },
            Some(&cert),
        );
        let err = Mailer::new(&server.config(tls))
            .unwrap()
            .send(&reply_to_ivan())
            .await
            .unwrap_err();
        assert!(matches!(err, SmtpError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );
        assert!(server.messages().is_empty());
    }
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    let server = SmtpServer::start();
    let err = Mailer::new(&server.config(TlsMode::Starttls))
        .unwrap()
        .send(&reply_to_ivan())
        .await
        .unwrap_err();
    assert!(matches!(err, SmtpError::Session { .. }), "{err:?}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(err.is_transient());
    assert!(server.messages().is_empty());
}

#[test]
fn plain_text_is_refused_for_remote_hosts() {
    let mut cfg = smtp_config(25, TlsMode::None);
    cfg.host = "smtp.example.com".into();
    let err = Mailer::new(&cfg).unwrap_err();
    assert!(matches!(err, SmtpError::Config(_)));
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[test]
fn a_missing_password_is_a_configuration_error_that_names_no_secret() {
    let mut cfg = smtp_config(25, TlsMode::None);
    cfg.user = Some("robot".into());
    cfg.password = mailrules::config::PasswordSource::Env("MAILRULES_TEST_UNSET_SMTP_PW".into());
    let err = Mailer::new(&cfg).unwrap_err();
    assert!(matches!(err, SmtpError::Config(_)));
    assert!(
        err.to_string().contains("MAILRULES_TEST_UNSET_SMTP_PW"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_login_never_shows_the_password() {
    let server = SmtpServer::start();
    std::env::set_var("MAILRULES_TEST_SMTP_PW_SHOWN", "s3cr3t-Пароль");
    let mut cfg = server.config(TlsMode::None);
    cfg.user = Some("robot@acme.example".into());
    cfg.password = mailrules::config::PasswordSource::Env("MAILRULES_TEST_SMTP_PW_SHOWN".into());
    let mailer = Mailer::new(&cfg).unwrap();
    assert!(!format!("{mailer:?}").contains("s3cr3t"));
    // The test server offers no AUTH at all, so logging in must fail.
    let err = mailer.send(&reply_to_ivan()).await.unwrap_err();
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(!format!("{err:?}").contains("s3cr3t"), "{err:?}");
    assert!(matches!(err, SmtpError::Session { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(server.messages().is_empty());
}
