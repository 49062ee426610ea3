//! Plain HTTP/1.1 to the daemon on a connection of our own, for the two
//! requests bollard has no public way to make: the hijacked `POST /session`
//! that carries BuildKit's gRPC session, and a `POST /build` that uses that
//! session for its context (bollard's BuildKit build always opens a session
//! of its own, serving registry auth only). Every transport ends up here as a
//! unix socket (the daemon's own, or a [`super::tunnel::Tunnel`]'s) or plain
//! TCP, so this needs no TLS or ssh of its own.
//!
//! What the daemon sends is read into memory up to a bound: an error body up
//! to [`ERROR_BODY_LIMIT`], a progress line up to [`MAX_LINE`].

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// The most of an error response's body read for its message.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// The longest line of a streamed response taken from the daemon. BuildKit
/// caps a step's log at a few MiB, so its progress lines stay far below.
pub(crate) const MAX_LINE: usize = 16 * 1024 * 1024;

/// Where a new connection to the daemon goes.
#[derive(Debug, Clone)]
pub(crate) enum RawTarget {
    Unix(PathBuf),
    /// `host:port`, IPv6 hosts in brackets.
    Tcp(String),
}

/// A connection to the daemon, whatever its transport.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

impl RawTarget {
    async fn dial(&self) -> std::io::Result<Box<dyn Io>> {
        Ok(match self {
            RawTarget::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            RawTarget::Tcp(address) => {
                let stream = tokio::net::TcpStream::connect(address).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
        })
    }

    /// Sends `POST path` with no body and `headers` on a new connection;
    /// the connection stays open for the response body or an upgrade.
    pub(crate) async fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, String> {
        let io = self
            .dial()
            .await
            .map_err(|e| format!("could not connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "daemon connection ended with an error");
            }
        });
        let mut request = Request::post(path).header("Host", "docker");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("bad request: {e}"))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| crate::diag::error_chain(&e))
    }
}

/// The daemon's error text from a non-success response: its JSON `message`,
/// or the body as it is (its first [`ERROR_BODY_LIMIT`] bytes).
pub(crate) async fn error_message(response: Response<Incoming>) -> String {
    let status = response.status();
    let mut incoming = response.into_body();
    let mut body: Vec<u8> = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match incoming.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = ERROR_BODY_LIMIT - body.len();
                    body.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(e)) => return format!("HTTP {status}: {e}"),
            None => break,
        }
    }
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(&body) {
        Ok(m) => format!("HTTP {}: {}", status.as_u16(), m.message),
        Err(_) => format!(
            "HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body).trim()
        ),
    }
}

/// Splits a streamed response body into lines, as the daemon writes one
/// JSON object per line.
pub(crate) struct Lines {
    body: Incoming,
    pending: Vec<u8>,
    /// How much of `pending` is known to hold no newline.
    scanned: usize,
    done: bool,
}

impl Lines {
    pub(crate) fn new(body: Incoming) -> Lines {
        Lines {
            body,
            pending: Vec::new(),
            scanned: 0,
            done: false,
        }
    }

    /// The next non-empty line, `None` at the end of the body; an error for
    /// a line over [`MAX_LINE`], which ends the body.
    pub(crate) async fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            let unscanned = self.pending.get(self.scanned..).unwrap_or_default();
            let newline = unscanned.iter().position(|b| *b == b'\n');
            if let Some(at) = newline.map(|n| n + self.scanned) {
                self.scanned = 0;
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return Some(Ok(line.to_vec()));
            }
            self.scanned = self.pending.len();
            if self.pending.len() > MAX_LINE {
                self.pending = Vec::new();
                self.scanned = 0;
                self.done = true;
                return Some(Err(format!(
                    "the daemon sent a line of over {} MiB without an end",
                    MAX_LINE >> 20
                )));
            }
            if self.done {
                let rest = std::mem::take(&mut self.pending);
                self.scanned = 0;
                let rest = rest.trim_ascii();
                return (!rest.is_empty()).then(|| Ok(rest.to_vec()));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.pending.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Some(Err(crate::diag::error_chain(&e))),
                None => self.done = true,
            }
        }
    }
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
