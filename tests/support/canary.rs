//! Test harness: a tiny HTTP server on 127.0.0.1 that records every request it gets. Hostile
//! mail points its remote images, CSS `url()`s and links at it; a page that fetched nothing
//! leaves it empty. It can also serve one page of its own (the browser harness's control).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct Canary {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Canary {
    /// Listens on a free port; every request is answered `200` with `page` as HTML (an empty
    /// body when `page` is empty), and its request line is recorded.
    pub fn start(page: &str) -> Canary {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let page = page.to_string();
        // A detached thread: it dies with the test binary, and a request after the test is
        // over is recorded into a list nobody reads any more.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(match stream.try_clone() {
                    Ok(s) => s,
                    Err(_) => continue,
                });
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the head: read up to the blank line so the answer is not reset.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                seen.lock().unwrap().push(line.trim_end().to_string());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Canary { port, requests }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every request line received so far (`GET /x HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
