//! OAuth2 mailboxes as users meet them: the real binary against a Dovecot whose passdb checks
//! access tokens at a local identity provider (short-lived tokens, rotation, revocation):
//! signing in with XOAUTH2 and OAUTHBEARER, outliving token expiries, rotated refresh tokens
//! written back 0600, a revoked refresh token stopping only its mailbox with one error, no
//! secret in the log, and `mailrules auth`'s device flow.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::daemon_process::Daemon;
use crate::support::dovecot::{message, wait_until, Dovecot, USER};
use crate::support::identity_provider::{IdentityProvider, CLIENT_ID, CLIENT_SECRET};

const WAIT: Duration = Duration::from_secs(60);
/// For reconnecting after a server restart: on a loaded machine the first attempts can meet
/// a server still starting, and the backoff between attempts grows (1 s, 2 s, 4 s …).
const RECONNECT_WAIT: Duration = Duration::from_secs(180);
const FIRST_REFRESH_TOKEN: &str = "rt-first-REFRESH-SECRET";

const RULES: &str = r#"
[[rule]]
name = "new"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
"#;

/// A config directory with an OAuth2 mailbox "support" on `oauth_dovecot` and, when given, a
/// password mailbox "sales" on `password_dovecot`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// `idp` is the identity provider's base URL, `http://127.0.0.1:PORT`.
    fn new(idp: &str, oauth_dovecot: &Dovecot, password_dovecot: Option<&Dovecot>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/10-test.toml"), RULES).unwrap();
        std::fs::write(
            dir.path().join("client.secret"),
            format!("{CLIENT_SECRET}\n"),
        )
        .unwrap();
        let refresh = dir.path().join("support.refresh");
        std::fs::write(&refresh, format!("{FIRST_REFRESH_TOKEN}\n")).unwrap();
        // Written by hand, readable by all: the first rotation must make it owner-only.
        std::fs::set_permissions(&refresh, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut config = format!(
            "store = \"mailrules.db\"\nrules = \"rules\"\n\n[[mailbox]]\nname = \"support\"\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"{USER}\"\n\
             auth = \"oauth2\"\non_success = \"keep\"\non_failure = \"keep\"\n\
             [mailbox.oauth2]\nprovider = \"custom\"\ntoken_url = \"{idp}/token\"\n\
             device_url = \"{idp}/device\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_file = \"client.secret\"\nrefresh_token_file = \"support.refresh\"\n\
             scope = \"imap\"\n",
            oauth_dovecot.port,
        );
        if let Some(sales) = password_dovecot {
            config.push_str(&format!(
                "\n[[mailbox]]\nname = \"sales\"\nhost = \"127.0.0.1\"\nport = {}\n\
                 tls = \"none\"\nuser = \"{USER}\"\npassword_file = \"{}\"\n\
                 on_success = \"keep\"\non_failure = \"keep\"\n",
                sales.port,
                sales.password_file().display()
            ));
        }
        std::fs::write(dir.path().join("mailrules.toml"), config).unwrap();
        Setup { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("mailrules.toml")
    }

    fn refresh_file(&self) -> PathBuf {
        self.dir.path().join("support.refresh")
    }

    fn tasks(&self) -> i64 {
        let path = self.dir.path().join("mailrules.db");
        if !path.exists() {
            return 0;
        }
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0)))
            .unwrap_or(0)
    }

    fn tasks_titled(&self, title: &str) -> i64 {
        let path = self.dir.path().join("mailrules.db");
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM tasks WHERE title = ?1",
                    [title],
                    |r| r.get(0),
                )
            })
            .unwrap_or(0)
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn wait_for_tasks(setup: &Setup, n: i64, daemon: &Daemon) {
    wait_until(
        WAIT,
        &format!("{n} task(s); log:\n{}", daemon.log()),
        || {
            let found = setup.tasks();
            async move { found >= n }
        },
    )
    .await;
}

/// No token or secret the test knows appears in `log`.
fn assert_no_secrets(log: &str, idp: &IdentityProvider) {
    let state = idp.state();
    let mut secrets = vec![
        FIRST_REFRESH_TOKEN.to_string(),
        CLIENT_SECRET.to_string(),
        "at-".to_string(),
        "rt-".to_string(),
    ];
    for key in ["current_refresh", "last_access"] {
        if let Some(value) = state[key].as_str().filter(|v| !v.is_empty()) {
            secrets.push(value.to_string());
        }
    }
    for secret in secrets {
        assert!(
            !log.contains(&secret),
            "the log shows a secret ({secret:?}):\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_signs_in_with_xoauth2_outlives_token_expiries_and_keeps_rotated_refresh_tokens()
{
    let idp = IdentityProvider::start(USER, 3, FIRST_REFRESH_TOKEN);
    let mut dovecot = Dovecot::start_with_oauth2(&idp.url("/introspect"), "xoauth2");
    let setup = Setup::new(&idp.url(""), &dovecot, None);
    let mut daemon = Daemon::start(&setup.config());
    daemon
        .wait_for_log("with XOAUTH2, folder INBOX", 1, WAIT)
        .await;
    for round in 1..=3 {
        dovecot
            .append(
                "INBOX",
                &message(&format!("r{round}"), &format!("round {round}"), ""),
            )
            .await;
        wait_for_tasks(&setup, round, &daemon).await;
        assert_eq!(setup.tasks_titled(&format!("round {round}")), 1);
        // The access token expires while the daemon idles; the server then drops the
        // session (as Microsoft 365 does), and the next login needs a new token.
        tokio::time::sleep(Duration::from_secs(4)).await;
        dovecot.stop();
        dovecot.start_again();
        daemon
            .wait_for_log("connected again to", round as usize, RECONNECT_WAIT)
            .await;
    }
    dovecot
        .append("INBOX", &message("last", "after the last expiry", ""))
        .await;
    wait_for_tasks(&setup, 4, &daemon).await;
    let state = idp.state();
    assert!(
        state["refresh_grants"].as_u64().unwrap() >= 4,
        "a new token for the first login and after each expiry: {state}"
    );
    assert_eq!(state["refused_refresh"], 0, "{state}");
    // Every refresh rotated the refresh token (the old one stops working): the file has
    // the newest, owner-only.
    let written = std::fs::read_to_string(setup.refresh_file()).unwrap();
    assert_eq!(written.trim(), state["current_refresh"].as_str().unwrap());
    assert_eq!(mode(&setup.refresh_file()), 0o600);
    assert!(daemon.is_running());
    daemon.terminate(WAIT);
    let log = daemon.log();
    assert_eq!(daemon.log_lines_with(" ERROR "), 0, "{log}");
    assert_no_secrets(&log, &idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_the_server_refuses_is_replaced_once_without_an_error() {
    let idp = IdentityProvider::start(USER, 600, FIRST_REFRESH_TOKEN);
    let mut dovecot = Dovecot::start_with_oauth2(&idp.url("/introspect"), "xoauth2");
    let setup = Setup::new(&idp.url(""), &dovecot, None);
    let mut daemon = Daemon::start(&setup.config());
    daemon.wait_for_log("with XOAUTH2", 1, WAIT).await;
    // Revoked before it expires: the cached token is refused at the next login.
    idp.post("/admin/revoke_access");
    dovecot.stop();
    dovecot.start_again();
    daemon
        .wait_for_log("connected again to", 1, RECONNECT_WAIT)
        .await;
    dovecot
        .append("INBOX", &message("after", "after the revocation", ""))
        .await;
    wait_for_tasks(&setup, 1, &daemon).await;
    assert_eq!(idp.state()["refresh_grants"], 2, "{}", idp.state());
    daemon.terminate(WAIT);
    let log = daemon.log();
    assert!(!log.contains("refused the XOAUTH2 login"), "{log}");
    assert_no_secrets(&log, &idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_refresh_token_stops_its_mailbox_with_one_error_and_the_others_go_on() {
    let idp = IdentityProvider::start(USER, 3, FIRST_REFRESH_TOKEN);
    idp.post("/admin/revoke_refresh");
    let oauth_dovecot = Dovecot::start_with_oauth2(&idp.url("/introspect"), "xoauth2");
    let sales = Dovecot::start();
    let setup = Setup::new(&idp.url(""), &oauth_dovecot, Some(&sales));
    let mut daemon = Daemon::start(&setup.config());
    daemon.wait_for_log("mailrules auth support", 1, WAIT).await;
    sales
        .append("INBOX", &message("sale-1", "a sale", ""))
        .await;
    oauth_dovecot
        .append("INBOX", &message("support-1", "a support request", ""))
        .await;
    wait_for_tasks(&setup, 1, &daemon).await;
    assert_eq!(setup.tasks_titled("a sale"), 1);
    // Time for a second attempt to show up if the mailbox were not stopped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(setup.tasks_titled("a support request"), 0);
    assert!(daemon.is_running());
    let log = daemon.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" ERROR ") && l.contains("mailrules auth support"))
        .collect();
    assert_eq!(errors.len(), 1, "one error, not one per attempt:\n{log}");
    assert_eq!(
        log.lines().filter(|l| l.contains(" ERROR ")).count(),
        1,
        "{log}"
    );
    assert!(
        errors[0].contains("support") && errors[0].contains("invalid_grant"),
        "{}",
        errors[0]
    );
    daemon.terminate(WAIT);
    assert_no_secrets(&daemon.log(), &idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_online_signs_in_with_oauthbearer_when_the_server_offers_it() {
    let idp = IdentityProvider::start(USER, 60, FIRST_REFRESH_TOKEN);
    let dovecot = Dovecot::start_with_oauth2(&idp.url("/introspect"), "xoauth2 oauthbearer");
    let setup = Setup::new(&idp.url(""), &dovecot, None);
    let config = setup.config();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mailrules"))
            .args(["check", "--online", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("ok: logged in with OAuth2 (OAUTHBEARER)"),
        "{stdout}"
    );
    assert_no_secrets(&format!("{stdout}{stderr}"), &idp);
}

#[test]
fn mailrules_auth_runs_the_device_flow_and_writes_the_refresh_token_owner_only_for_a_mailbox_and_smtp(
) {
    let idp = IdentityProvider::start(USER, 60, "rt-unused");
    let dovecot = Dovecot::start_with_oauth2(&idp.url("/introspect"), "xoauth2");
    let setup = Setup::new(&idp.url(""), &dovecot, None);
    std::fs::remove_file(setup.refresh_file()).unwrap();
    // Before the first sign-in, `check` says what to run.
    let checked = Command::new(env!("CARGO_BIN_EXE_mailrules"))
        .args(["check", "--config"])
        .arg(setup.config())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success());
    assert!(
        said.contains("does not exist yet; run `mailrules auth support` to sign in"),
        "{said}"
    );
    let written = sign_in(
        &idp,
        &setup.config(),
        &["auth", "support"],
        &setup.refresh_file(),
    );
    assert_eq!(written, idp.state()["current_refresh"].as_str().unwrap());
    // The [smtp] account the same way, into its own file.
    let smtp_refresh = setup.dir.path().join("smtp.refresh");
    let mut config = std::fs::read_to_string(setup.config()).unwrap();
    config.push_str(&format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nuser = \"{USER}\"\n\
         from = \"{USER}\"\nauth = \"oauth2\"\n[smtp.oauth2]\nprovider = \"custom\"\n\
         token_url = \"{}\"\ndevice_url = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret_file = \"client.secret\"\nrefresh_token_file = \"smtp.refresh\"\n",
        idp.url("/token"),
        idp.url("/device")
    ));
    std::fs::write(setup.config(), config).unwrap();
    let written = sign_in(&idp, &setup.config(), &["auth", "--smtp"], &smtp_refresh);
    assert_eq!(written, idp.state()["current_refresh"].as_str().unwrap());
    assert_eq!(idp.state()["device_grants"], 2);
}

/// Runs `mailrules ARGS` (a device-flow sign-in), approves the code it shows at the identity
/// provider, and returns the refresh token it wrote to `file` (checked to be 0600 and not
/// printed).
fn sign_in(idp: &IdentityProvider, config: &Path, args: &[&str], file: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailrules"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut shown = Vec::new();
    let code = loop {
        let line = lines.next().expect("the code was not shown").unwrap();
        shown.push(line.clone());
        if line == "and enter the code" {
            break lines.next().unwrap().unwrap().trim().to_string();
        }
    };
    assert!(
        shown.iter().any(|l| l.contains(&idp.url("/activate"))),
        "{shown:?}"
    );
    idp.post(&format!("/admin/approve?user_code={code}"));
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{shown:?} {rest:?}");
    let written = std::fs::read_to_string(file).unwrap().trim().to_string();
    assert_eq!(mode(file), 0o600);
    let all = rest.join("\n");
    assert!(all.contains("ok: signed in"), "{all}");
    assert!(!all.contains(&written), "the token is not printed: {all}");
    written
}

fn reply() -> mailrules::smtp::OutgoingMail {
    use chrono::TimeZone;
    mailrules::smtp::OutgoingMail {
        kind: mailrules::smtp::MailKind::Reply,
        to: "ivan@client.example".into(),
        cc: Vec::new(),
        subject: "Re: принтер [#7]".into(),
        body: "Ваша заявка принята, номер 7.".into(),
        message_id: "oauth.7@acme.example".into(),
        in_reply_to: None,
        references: Vec::new(),
        date: chrono::Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_is_sent_with_xoauth2_and_a_refused_token_is_replaced_once() {
    use crate::support::smtp::{smtp_config, ServerOptions, SmtpServer};
    use mailrules::config::{OAuth2Config, Provider, SecretSource, TlsMode};
    use mailrules::smtp::Mailer;

    let idp = IdentityProvider::start(USER, 600, FIRST_REFRESH_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let options = ServerOptions {
        xoauth2_introspect: Some(idp.url("/introspect")),
        maildir: Some(dir.path().join("Maildir")),
        ..ServerOptions::default()
    };
    let mut server = SmtpServer::start_with(options.clone(), None);
    // A server started again on the same port and Maildir: the mailer's pooled (signed-in)
    // connection is gone, the next mail signs in anew.
    let restart = |server: SmtpServer| {
        let options = ServerOptions {
            port: Some(server.port),
            ..options.clone()
        };
        drop(server);
        SmtpServer::start_with(options, None)
    };
    std::fs::write(dir.path().join("client.secret"), CLIENT_SECRET).unwrap();
    std::fs::write(dir.path().join("smtp.refresh"), FIRST_REFRESH_TOKEN).unwrap();
    let mut config = smtp_config(server.port, TlsMode::None);
    config.user = Some(USER.into());
    config.oauth2 = Some(OAuth2Config {
        provider: Provider::Custom,
        token_url: Some(idp.url("/token")),
        device_url: None,
        client_id: CLIENT_ID.into(),
        client_secret: Some(SecretSource::File(dir.path().join("client.secret"))),
        refresh_token: SecretSource::File(dir.path().join("smtp.refresh")),
        scope: Some("smtp".into()),
    });
    let mailer = Mailer::new(&config).unwrap();
    mailer.check_login().await.unwrap();
    mailer.send(&reply()).await.unwrap();
    assert_eq!(server.messages().len(), 1);
    assert_eq!(idp.state()["refresh_grants"], 1, "the token is reused");
    // Revoked before it expires: the server refuses it at the next sign-in; one new token.
    idp.post("/admin/revoke_access");
    server = restart(server);
    mailer.send(&reply()).await.unwrap();
    assert_eq!(server.messages().len(), 2);
    assert_eq!(
        idp.state()["refresh_grants"],
        2,
        "the refused cached token was replaced once"
    );
    let written = std::fs::read_to_string(dir.path().join("smtp.refresh")).unwrap();
    assert_eq!(
        written.trim(),
        idp.state()["current_refresh"].as_str().unwrap()
    );
    // A revoked refresh token: sending stops with what to run, and no token in the words.
    idp.post("/admin/revoke_refresh");
    idp.post("/admin/revoke_access");
    let _server = restart(server);
    let error = mailer.send(&reply()).await.unwrap_err().to_string();
    assert!(error.contains("mailrules auth --smtp"), "{error}");
    assert_no_secrets(&error, &idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_the_server_refuses_is_reported_in_the_servers_words() {
    // Tokens for another account: the identity provider issues them, Dovecot refuses them.
    let idp = IdentityProvider::start("someone-else@acme.example", 60, FIRST_REFRESH_TOKEN);
    let dovecot = Dovecot::start_with_oauth2(&idp.url("/introspect"), "xoauth2");
    let setup = Setup::new(&idp.url(""), &dovecot, None);
    let config = setup.config();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mailrules"))
            .args(["check", "--online", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "error: the server refused the XOAUTH2 login of \"{USER}\" with an access token: \
             [AUTHENTICATIONFAILED] Authentication failed."
        )),
        "{stdout}"
    );
    assert_eq!(
        idp.state()["refresh_grants"],
        1,
        "a new token that is refused is not replaced"
    );
    assert_no_secrets(&stdout, &idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_provider_that_is_down_is_waited_for_like_a_lost_connection() {
    let port = crate::support::dovecot::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dovecot = Dovecot::start_with_oauth2(&format!("{base}/introspect"), "xoauth2");
    let setup = Setup::new(&base, &dovecot, None);
    let mut daemon = Daemon::start(&setup.config());
    daemon
        .wait_for_log("cannot get a token from", 1, WAIT)
        .await;
    let idp = IdentityProvider::start_on(port, USER, 60, FIRST_REFRESH_TOKEN);
    daemon
        .wait_for_log("connected again to", 1, RECONNECT_WAIT)
        .await;
    dovecot
        .append("INBOX", &message("late", "once the provider is back", ""))
        .await;
    wait_for_tasks(&setup, 1, &daemon).await;
    daemon.terminate(WAIT);
    let log = daemon.log();
    assert_eq!(
        daemon.log_lines_with(" ERROR "),
        0,
        "network trouble, not the operator's:\n{log}"
    );
    assert_eq!(
        daemon.log_lines_with("reconnecting with backoff"),
        1,
        "{log}"
    );
    assert_no_secrets(&log, &idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_reach_the_identity_provider_is_waited_for_too() {
    let port = crate::support::dovecot::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = IdentityProvider::start_on(port, USER, 600, FIRST_REFRESH_TOKEN);
    let mut dovecot = Dovecot::start_with_oauth2(&format!("{base}/introspect"), "xoauth2");
    let setup = Setup::new(&base, &dovecot, None);
    let mut daemon = Daemon::start(&setup.config());
    daemon.wait_for_log("with XOAUTH2", 1, WAIT).await;
    // The provider goes away: Dovecot cannot check the (still valid, cached) token and
    // drops the connection ("auth service reported temporary failure").
    let refresh_token = idp.state()["current_refresh"].as_str().unwrap().to_string();
    drop(idp);
    dovecot.stop();
    dovecot.start_again();
    wait_until(WAIT, "a login Dovecot could not check", || {
        let tried = dovecot.log().matches("XOAUTH2").count();
        async move { tried >= 2 }
    })
    .await;
    // Back, knowing the refresh token but none of the access tokens issued before.
    let idp = IdentityProvider::start_on(port, USER, 600, &refresh_token);
    daemon
        .wait_for_log("connected again to", 1, RECONNECT_WAIT)
        .await;
    dovecot
        .append("INBOX", &message("back", "once the server can check", ""))
        .await;
    wait_for_tasks(&setup, 1, &daemon).await;
    daemon.terminate(WAIT);
    let log = daemon.log();
    assert_eq!(daemon.log_lines_with(" ERROR "), 0, "{log}");
    assert_no_secrets(&log, &idp);
}
