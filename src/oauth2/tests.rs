//! Tests of the token source against a scripted token endpoint on loopback: caching until a
//! margin before expiry, a rotated refresh token written back, a refused one not sent again.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Freshness, OAuth2Error, TokenSource};
use crate::config::{OAuth2Config, Provider, SecretSource};

/// A token endpoint answering each request with the next of `answers` (the last one again
/// when they run out); returns its URL, the request count and the request bodies.
async fn token_endpoint(
    answers: Vec<(u16, String)>,
) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (seen, kept) = (count.clone(), bodies.clone());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        kept.lock().unwrap().push(body.to_string());
                        break;
                    }
                }
            }
            let index = seen.fetch_add(1, Ordering::SeqCst);
            let (status, body) = answers[index.min(answers.len() - 1)].clone();
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(answer.as_bytes()).await;
        }
    });
    (url, count, bodies)
}

fn token(access: &str, expires_in: u64, refresh: Option<&str>) -> (u16, String) {
    let refresh = refresh
        .map(|r| format!(",\"refresh_token\":\"{r}\""))
        .unwrap_or_default();
    (
        200,
        format!("{{\"access_token\":\"{access}\",\"token_type\":\"Bearer\",\"expires_in\":{expires_in}{refresh}}}"),
    )
}

fn source(url: &str, refresh_file: &std::path::Path) -> TokenSource {
    let config = OAuth2Config {
        provider: Provider::Custom,
        token_url: Some(url.to_string()),
        device_url: None,
        client_id: "client".into(),
        client_secret: None,
        refresh_token: SecretSource::File(refresh_file.to_path_buf()),
        scope: Some("imap".into()),
    };
    TokenSource::new("mailbox \"support\"", "mailrules auth support", &config).unwrap()
}

#[tokio::test]
async fn a_token_is_reused_until_a_margin_before_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r");
    std::fs::write(&file, "rt-1\n").unwrap();
    let (url, count, bodies) = token_endpoint(vec![
        token("at-1", 3600, None),
        token("at-2", 1, None),
        token("at-3", 3600, None),
    ])
    .await;
    let mut tokens = source(&url, &file);
    let (first, how) = tokens.access_token().await.unwrap();
    assert_eq!((first.expose(), how), ("at-1", Freshness::New));
    let (again, how) = tokens.access_token().await.unwrap();
    assert_eq!((again.expose(), how), ("at-1", Freshness::Cached));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(bodies.lock().unwrap()[0].contains("refresh_token=rt-1"));
    // Refused by a server: the next one is new.
    tokens.forget_access_token();
    let (short, _) = tokens.access_token().await.unwrap();
    assert_eq!(short.expose(), "at-2");
    // A one-second token is renewed a fifth of its lifetime before it expires.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (renewed, how) = tokens.access_token().await.unwrap();
    assert_eq!((renewed.expose(), how), ("at-3", Freshness::New));
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_file_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r");
    std::fs::write(&file, "rt-1\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (url, _, bodies) = token_endpoint(vec![
        token("at-1", 1, Some("rt-2")),
        token("at-2", 60, None),
    ])
    .await;
    let mut tokens = source(&url, &file);
    tokens.access_token().await.unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "rt-2\n");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    tokens.forget_access_token();
    tokens.access_token().await.unwrap();
    assert!(bodies.lock().unwrap()[1].contains("refresh_token=rt-2"));
}

#[tokio::test]
async fn a_refused_refresh_token_is_not_sent_again_until_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r");
    std::fs::write(&file, "rt-revoked\n").unwrap();
    let refusal = (400, "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}".to_string());
    let (url, count, _) = token_endpoint(vec![refusal, token("at-1", 60, None)]).await;
    let mut tokens = source(&url, &file);
    for _ in 0..3 {
        let error = tokens.access_token().await.unwrap_err();
        assert!(matches!(error, OAuth2Error::Revoked { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            "mailbox \"support\": the identity provider refused the refresh token \
             (invalid_grant: Token has been expired or revoked.); run `mailrules auth support` \
             to sign in again"
        );
        assert!(!error.to_string().contains("rt-revoked"));
    }
    assert_eq!(count.load(Ordering::SeqCst), 1, "asked once");
    // `mailrules auth support` wrote a new one: it is used.
    std::fs::write(&file, "rt-new\n").unwrap();
    let (token, _) = tokens.access_token().await.unwrap();
    assert_eq!(token.expose(), "at-1");
}

#[tokio::test]
async fn an_endpoint_that_answers_no_token_is_a_transient_failure_without_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r");
    std::fs::write(&file, "rt-1\n").unwrap();
    let (url, _, _) =
        token_endpoint(vec![(502, "<html>bad gateway at-secret</html>".into())]).await;
    let mut tokens = source(&url, &file);
    let error = tokens.access_token().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(!error.to_string().contains("at-secret"), "{error}");
}
