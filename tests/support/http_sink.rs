//! A scripted HTTP receiver for the webhook tests, on 127.0.0.1 and a free port, in its own
//! thread and tokio runtime: each path answers from its script in turn (a status with headers
//! and a body, a connection dropped without an answer, or no answer at all), then 200 for good;
//! every request that arrived whole is recorded with its headers and body.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the receiver does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, extra headers, body.
    Status(u16, Vec<(String, String)>, String),
    /// Closes the connection at once (RST) without answering.
    Reset,
    /// Never answers (until the receiver is dropped).
    Hang,
}

impl Reply {
    pub fn status(code: u16) -> Reply {
        Reply::Status(code, Vec::new(), String::new())
    }
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status answered (`None`: reset or hanging).
    pub answered: Option<u16>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Scripts = Arc<Mutex<HashMap<String, VecDeque<Reply>>>>;

pub struct HttpSink {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    scripts: Scripts,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HttpSink {
    pub fn start() -> HttpSink {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let scripts: Scripts = Arc::default();
        let (seen, script) = (requests.clone(), scripts.clone());
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, seen.clone(), script.clone()));
            }
        });
        HttpSink {
            port,
            requests,
            scripts,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The replies `path` gives, in order, before it answers 200 for good.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.scripts
            .lock()
            .unwrap()
            .insert(path.to_string(), replies.into());
    }

    pub fn requests(&self, path: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` got at least `n` requests whose answer is known (or that hang).
    pub fn wait_for(&self, path: &str, n: usize, limit: Duration) -> Vec<Request> {
        let start = Instant::now();
        loop {
            let got = self.requests(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < limit,
                "{path} got {} requests, not {n}, within {limit:?}: {got:#?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<Request>>>, scripts: Scripts) {
    let Some(mut request) = read_request(&mut stream).await else {
        return;
    };
    let reply = scripts
        .lock()
        .unwrap()
        .get_mut(&request.path)
        .and_then(VecDeque::pop_front)
        .unwrap_or_else(|| Reply::Status(200, Vec::new(), "{\"ok\":true}".into()));
    request.answered = match &reply {
        Reply::Status(code, ..) => Some(*code),
        Reply::Reset | Reply::Hang => None,
    };
    seen.lock().unwrap().push(request);
    match reply {
        Reply::Status(code, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {code} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Reset => {
            // SO_LINGER 0: the close is a reset, as a crashed or overloaded server's; it does
            // not block (the deprecation is about blocking on a non-zero linger).
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(stream);
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        path,
        headers,
        body,
        answered: None,
    })
}
