//! A recording proxy in front of a test IMAP server on 127.0.0.1: every line the client sends
//! and every line the server answers, in the order the proxy saw them, so that a test can
//! check which commands were sent and whether one went out before the answer to another.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Who wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// The proxy; it runs until the test's runtime ends.
pub struct Transcript {
    pub port: u16,
    lines: Arc<Mutex<Vec<(Side, String)>>>,
}

impl Transcript {
    /// Listens on a free loopback port and passes every connection on to `server_port`.
    pub async fn start(server_port: u16) -> Transcript {
        Transcript::start_rewriting(server_port, |_| None).await
    }

    /// The same, passing on `rewrite`'s line in place of each client line it returns one for
    /// (the transcript has what the server got): a server that answers some command
    /// differently.
    pub async fn start_rewriting(server_port: u16, rewrite: Rewrite) -> Transcript {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines: Arc<Mutex<Vec<(Side, String)>>> = Arc::default();
        let recorded = Arc::clone(&lines);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(relay(
                    client_read,
                    server_write,
                    (Side::Client, rewrite),
                    Arc::clone(&recorded),
                ));
                tokio::spawn(relay(
                    server_read,
                    client_write,
                    (Side::Server, |_| None),
                    Arc::clone(&recorded),
                ));
            }
        });
        Transcript { port, lines }
    }

    /// Every line so far. Message bodies inside literals are lines too; tests look only at
    /// command and completion lines, which those cannot be mistaken for (a tag of the form
    /// the client uses, then a command name or OK/NO/BAD).
    pub fn lines(&self) -> Vec<(Side, String)> {
        self.lines.lock().unwrap().clone()
    }
}

/// A line the client sent (without its CRLF) → the line to pass on instead, if any.
pub type Rewrite = fn(&str) -> Option<String>;

/// Copies one direction line by line, noting each line before passing it on.
async fn relay(
    from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    (side, rewrite): (Side, Rewrite),
    lines: Arc<Mutex<Vec<(Side, String)>>>,
) {
    let mut from = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match from.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Some(other) = rewrite(String::from_utf8_lossy(&line).trim_end()) {
            line = format!("{other}\r\n").into_bytes();
        }
        lines
            .lock()
            .unwrap()
            .push((side, String::from_utf8_lossy(&line).trim_end().to_string()));
        if to.write_all(&line).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
