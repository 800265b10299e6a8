//! A small OAuth2 identity provider for the OAuth2 tests (`identity_provider.py`): token
//! endpoint (refresh-token and device-code grants, rotating refresh tokens), device
//! authorization, introspection for Dovecot, short-lived access tokens and revocation, on
//! 127.0.0.1 on a free port; stopped on Drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/identity_provider.py"
);

pub const CLIENT_ID: &str = "mailrules-test-client";
pub const CLIENT_SECRET: &str = "client-secret-VERY-SECRET-1";

pub struct IdentityProvider {
    child: Child,
    pub port: u16,
}

impl IdentityProvider {
    /// Issues access tokens for `user` that live `lifetime_secs`; `refresh_token` is valid
    /// from the start (as if `mailrules auth` had run).
    pub fn start(user: &str, lifetime_secs: u32, refresh_token: &str) -> IdentityProvider {
        IdentityProvider::start_on(0, user, lifetime_secs, refresh_token)
    }

    /// [`IdentityProvider::start`] on `port` (0: any free one).
    pub fn start_on(
        port: u16,
        user: &str,
        lifetime_secs: u32,
        refresh_token: &str,
    ) -> IdentityProvider {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args(["--port", &port.to_string()])
            .args(["--user", user, "--client-id", CLIENT_ID])
            .args(["--client-secret", CLIENT_SECRET])
            .args(["--lifetime", &lifetime_secs.to_string()])
            .args(["--refresh-token", refresh_token])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start python3 for the identity provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the identity provider did not start: {line:?}"));
        IdentityProvider { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET /admin/state`: current_refresh, last_access, refresh_grants, device_grants,
    /// introspections, refused_refresh.
    pub fn state(&self) -> serde_json::Value {
        self.request("GET", "/admin/state")
    }

    /// `POST path` with an empty body; the JSON answer.
    pub fn post(&self, path: &str) -> serde_json::Value {
        self.request("POST", path)
    }

    fn request(&self, method: &str, path: &str) -> serde_json::Value {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            tcp,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
