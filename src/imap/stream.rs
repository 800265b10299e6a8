//! The byte stream under an IMAP session: plain TCP (loopback only) or TLS over TCP, with a tap
//! that lifts the one response our IMAP library cannot parse (RFC 2342 NAMESPACE) out of the
//! stream while we wait for it.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// One type for both kinds of connection, so a session type does not depend on the TLS mode.
#[derive(Debug)]
pub struct ImapStream {
    transport: Transport,
    tap: NamespaceTap,
    /// Bytes read while the tap was armed, up to the end of the last complete line.
    lines: Vec<u8>,
    /// Bytes ready to hand to the IMAP library (lines the tap let through).
    ready: Vec<u8>,
    /// Bytes to write at the next flush, after what the library wrote (see
    /// [`ImapStream::send_with_next_flush`]), and how many of them are written.
    with_flush: Vec<u8>,
    with_flush_sent: usize,
}

#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Catches the untagged `* NAMESPACE` line. The IMAP library we use has no parser for it and
/// would fail the whole connection on it, so while the tap is armed (only between sending
/// `NAMESPACE` and reading its tagged answer, when no message data can be on the wire) the
/// stream reads line by line and keeps that line to itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct NamespaceTap {
    state: Arc<Mutex<TapState>>,
}

#[derive(Debug, Default)]
struct TapState {
    armed: bool,
    caught: Option<Vec<u8>>,
}

impl NamespaceTap {
    pub(crate) fn arm(&self) {
        let mut state = self.lock();
        state.armed = true;
        state.caught = None;
    }

    /// Disarms the tap and hands over the line it caught, if any.
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        let mut state = self.lock();
        state.armed = false;
        state.caught.take()
    }

    fn armed(&self) -> bool {
        self.lock().armed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TapState> {
        // The state is two plain fields: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ImapStream {
    pub(crate) fn plain(tcp: TcpStream) -> ImapStream {
        ImapStream::new(Transport::Plain(tcp))
    }

    pub(crate) fn tls(stream: TlsStream<TcpStream>) -> ImapStream {
        ImapStream::new(Transport::Tls(Box::new(stream)))
    }

    fn new(transport: Transport) -> ImapStream {
        ImapStream {
            transport,
            tap: NamespaceTap::default(),
            lines: Vec::new(),
            ready: Vec::new(),
            with_flush: Vec::new(),
            with_flush_sent: 0,
        }
    }

    /// Writes `bytes` at the library's next flush, right behind what it wrote: commands of
    /// our own pipelined behind the library's (IDLE's `DONE`, which the library sends and
    /// then waits for the server's answer to before anything else can be sent).
    pub(crate) fn send_with_next_flush(&mut self, bytes: &[u8]) {
        self.with_flush.extend_from_slice(bytes);
    }

    pub(crate) fn tap(&self) -> NamespaceTap {
        self.tap.clone()
    }

    /// The TCP stream of a plain connection (to start TLS on it), if nothing is buffered.
    pub(crate) fn into_plain(self) -> Option<TcpStream> {
        match self.transport {
            Transport::Plain(tcp) if self.lines.is_empty() && self.ready.is_empty() => Some(tcp),
            _ => None,
        }
    }

    /// Moves complete lines from `lines` to `ready`, keeping a NAMESPACE line for the tap.
    fn sort_lines(&mut self) {
        while let Some(end) = complete_line(&self.lines) {
            let line: Vec<u8> = self.lines.drain(..end).collect();
            let armed = self.tap.armed();
            if armed && is_namespace_line(&line) {
                let mut state = self.tap.lock();
                state.caught = Some(line);
                state.armed = false;
            } else {
                self.ready.extend_from_slice(&line);
            }
            if !armed {
                break;
            }
        }
        if !self.tap.armed() {
            // Whatever follows is not ours to look at.
            self.ready.append(&mut self.lines);
        }
    }
}

fn is_namespace_line(line: &[u8]) -> bool {
    const START: &[u8] = b"* NAMESPACE ";
    line.len() >= START.len() && line[..START.len()].eq_ignore_ascii_case(START)
}

/// The length of the first complete line in `buf` (CRLF included), counting `{n}` literals as
/// part of their line.
fn complete_line(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    loop {
        let newline = buf[start..].iter().position(|&b| b == b'\n')? + start;
        let line = &buf[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match literal_length(line) {
            Some(n) if buf.len() >= newline + 1 + n => start = newline + 1 + n,
            Some(_) => return None,
            None => return Some(newline + 1),
        }
    }
}

/// `n` when `line` ends with a literal announcement `{n}`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if !this.tap.armed() && this.lines.is_empty() {
                return this.transport.poll_read(cx, buf);
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            match this.transport.poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // End of stream: hand over what is left as it is.
                    this.ready.append(&mut this.lines);
                    if this.ready.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => {
                    this.lines.extend_from_slice(read.filled());
                    this.sort_lines();
                }
                other => return other,
            }
        }
    }
}

impl Transport {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let read = match self {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if matches!(read, Poll::Ready(Ok(()))) {
            self.acknowledge_at_once();
        }
        read
    }

    /// Keeps the socket acknowledging every segment at once. A server that writes an answer
    /// in pieces with Nagle's algorithm on (Cyrus sends a message of more than 4 KiB in two
    /// writes) holds the second piece until the first is acknowledged, and Linux delays that
    /// acknowledgement by up to 40 ms: measured as 45 ms added to a fetch from Cyrus after an
    /// IDLE notice. Linux leaves quick-ack mode on its own after a while, so it is set again
    /// after every read (one cheap system call); failing to set it only costs that delay.
    fn acknowledge_at_once(&self) {
        #[cfg(target_os = "linux")]
        {
            let tcp = match self {
                Transport::Plain(s) => s,
                Transport::Tls(s) => s.get_ref().0,
            };
            let _ = tcp.set_quickack(true);
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.with_flush_sent < this.with_flush.len() {
            let rest = &this.with_flush[this.with_flush_sent..];
            let written = match &mut this.transport {
                Transport::Plain(s) => ready!(Pin::new(s).poll_write(cx, rest))?,
                Transport::Tls(s) => ready!(Pin::new(s.as_mut()).poll_write(cx, rest))?,
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.with_flush_sent += written;
        }
        this.with_flush.clear();
        this.with_flush_sent = 0;
        match &mut this.transport {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_after_their_literals() {
        assert_eq!(complete_line(b"* OK hi\r\nA1 OK"), Some(9));
        assert_eq!(complete_line(b"* OK hi"), None);
        let with_literal = b"* NAMESPACE (({6}\r\nINBOX. \".\")) NIL NIL\r\nA1 OK\r\n";
        assert_eq!(complete_line(with_literal), Some(with_literal.len() - 7));
        assert_eq!(complete_line(b"* NAMESPACE (({6}\r\nINB"), None);
    }

    #[tokio::test]
    async fn the_namespace_line_is_lifted_out_only_while_armed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            // Split across writes, so lines arrive in pieces.
            for piece in [
                &b"* NAMESPACE ((\"INBOX.\" \".\")) NIL"[..],
                b" NIL\r\nA1 OK done\r\n",
            ] {
                socket.write_all(piece).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            socket
                .write_all(b"* NAMESPACE NIL NIL NIL\r\n")
                .await
                .unwrap();
        });
        let tcp = TcpStream::connect(address).await.unwrap();
        let mut stream = ImapStream::plain(tcp);
        let tap = stream.tap();
        tap.arm();
        let mut first = vec![0u8; 15];
        stream.read_exact(&mut first).await.unwrap();
        assert_eq!(first, b"A1 OK done\r\n* N");
        assert_eq!(
            tap.take().as_deref(),
            Some(&b"* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n"[..])
        );
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(
            rest, b"AMESPACE NIL NIL NIL\r\n",
            "not armed: passed through"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn bytes_given_for_the_next_flush_follow_what_was_written_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            socket.read_to_end(&mut seen).await.unwrap();
            seen
        });
        let mut stream = ImapStream::plain(TcpStream::connect(address).await.unwrap());
        stream.send_with_next_flush(b"N1 UID SEARCH UID 5:*\r\n");
        stream.write_all(b"DONE").await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
        stream.flush().await.unwrap();
        stream.write_all(b"A7 NOOP\r\n").await.unwrap();
        stream.flush().await.unwrap();
        stream.shutdown().await.unwrap();
        assert_eq!(
            String::from_utf8(server.await.unwrap()).unwrap(),
            "DONE\r\nN1 UID SEARCH UID 5:*\r\nA7 NOOP\r\n"
        );
    }
}
