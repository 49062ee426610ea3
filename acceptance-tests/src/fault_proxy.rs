//! A reverse proxy in front of a [`Registry`] that injects the faults real registries and
//! the networks before them produce, and counts each one it injected, so a test can prove
//! the provider met (and survived) every kind.
//!
//! It listens on a free loopback port, one thread per client connection, and forwards
//! each request over a fresh connection to the registry: heads as the raw lines they
//! came as (only a `Location` naming the registry is rewritten to name the proxy, so
//! uploads keep coming through it), bodies byte for byte in their own framing. The
//! faults, each switched on by [`Faults`]:
//! - 503 with a distribution error body on the first `GET`/`HEAD` and the first `PUT`
//!   of each manifest path (`/v2/<name>/manifests/<reference>`): every manifest a push
//!   writes and every one a read asks for fails once;
//! - 429 with `Retry-After: 1` on the first `GET /v2/`, and on the first `GET` of each
//!   blob path;
//! - the first blob upload `PATCH` and the first upload `PUT` carrying a body are cut:
//!   half the `Content-Length`, or [`CHUNKED_CUT`] bytes of a chunked body, reach the
//!   registry, then both connections are dropped (a body too short to cut is forwarded
//!   whole and the next one is tried);
//! - answers to blob `HEAD`s are held back for a while, not failed;
//! - a rate limiter that means it: the first blob `HEAD` opens a window on its path, and
//!   every request to that path until the window closes is answered 429 with a
//!   `Retry-After` naming the seconds left, so a client retrying sooner is refused again;
//! - immutable tags, as ECR with `imageTagMutability = IMMUTABLE`: a manifest `PUT` to a
//!   tag the registry already has (asked with a `HEAD` of its own) is answered 400
//!   `TAG_INVALID` with ECR's words, even when the bytes are the same; pushes by digest
//!   and new tags go through.

use std::collections::HashSet;
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::acceptor::Acceptor;
use crate::http1::{relay_body, Framing, Head, Relayed};
use crate::Registry;

/// Where a chunked upload body (no length known ahead) is cut.
pub const CHUNKED_CUT: u64 = 3 * 1024 * 1024;

/// Log lines kept, at most.
const MAX_LOG: usize = 10_000;

/// Which faults to inject (`Default`: none).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub manifest_503: bool,
    pub v2_429: bool,
    pub blob_get_429: bool,
    pub cut_uploads: bool,
    /// How long blob `HEAD` answers are held back; `None` leaves them alone.
    pub slow_blob_heads: Option<Duration>,
    /// How long the rate-limit window on the first blob `HEAD`'s path lasts.
    pub rate_window: Option<Duration>,
    /// Refuse every manifest `PUT` to an existing tag, as an immutable ECR repository.
    pub immutable_tags: bool,
}

impl Faults {
    /// Every fault, blob `HEAD`s slowed by 300 ms, a rate-limit window of 5 s.
    pub fn all() -> Faults {
        Faults {
            manifest_503: true,
            v2_429: true,
            blob_get_429: true,
            cut_uploads: true,
            slow_blob_heads: Some(Duration::from_millis(300)),
            rate_window: Some(Duration::from_secs(5)),
            immutable_tags: false,
        }
    }
}

/// How many faults of each kind were injected, and how many requests reached the registry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    pub manifest_read_503: u64,
    pub manifest_put_503: u64,
    pub v2_429: u64,
    pub blob_get_429: u64,
    /// 429s answered inside the rate-limit window.
    pub window_429: u64,
    pub cut_patch: u64,
    pub cut_put: u64,
    pub slowed: u64,
    pub forwarded: u64,
    /// Manifest `PUT`s to an existing tag refused as immutable.
    pub immutable_refused: u64,
}

/// A running proxy; stopped (and its client connections shut) when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`, to use where the registry's address would go.
    pub address: String,
    shared: Arc<Shared>,
    // Dropped with the proxy: stops accepting and shuts the client connections.
    _acceptor: Acceptor,
}

struct Shared {
    faults: Faults,
    upstream: String,
    address: String,
    state: Mutex<State>,
}

/// Which faults were used up, and what happened.
#[derive(Default)]
struct State {
    manifest_reads: HashSet<String>,
    manifest_puts: HashSet<String>,
    blob_gets: HashSet<String>,
    v2_done: bool,
    /// The rate-limited path and when its window closes.
    window: Option<(String, Instant)>,
    /// Claimed by the upload being cut (released if its body was too short).
    patch_claimed: bool,
    put_claimed: bool,
    injected: Injected,
    log: Vec<String>,
    /// Every manifest read answers 503 while set ([`FaultProxy::set_manifest_reads_down`]).
    manifest_reads_down: bool,
}

/// A request being forwarded, its body still to come.
struct Incoming<'a> {
    head: &'a Head,
    method: &'a str,
    framing: Framing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Patch,
    Put,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Answer with this status (and `Retry-After` seconds) here; the registry never
    /// sees the request.
    Refuse(u16, Option<u64>),
    Forward {
        cut: Option<Cut>,
        delay: Option<Duration>,
    },
}

impl FaultProxy {
    /// A proxy for `registry` injecting `faults`.
    pub fn start(registry: &Registry, faults: Faults) -> FaultProxy {
        FaultProxy::in_front_of(&registry.address, faults)
    }

    /// A proxy for whatever listens at `upstream` (`host:port`).
    pub fn in_front_of(upstream: &str, faults: Faults) -> FaultProxy {
        let bound = Acceptor::bind("the fault proxy");
        let address = bound.address().to_string();
        let shared = Arc::new(Shared {
            faults,
            upstream: upstream.to_string(),
            address: address.clone(),
            state: Mutex::default(),
        });
        let serving = shared.clone();
        let acceptor = bound.serve(move |id, client| {
            if let Err(e) = serving.serve(client) {
                serving.note(format!("connection {id} ended: {e}"));
            }
        });
        FaultProxy {
            address,
            shared,
            _acceptor: acceptor,
        }
    }

    /// What was injected so far.
    pub fn injected(&self) -> Injected {
        self.shared.lock().injected
    }

    /// While `down`, every manifest `GET` and `HEAD` answers 503, for as long as it takes:
    /// a registry whose reads are failing, not one that fails once and recovers.
    pub fn set_manifest_reads_down(&self, down: bool) {
        self.shared.lock().manifest_reads_down = down;
    }

    /// One line per request: method, path (query left out), status, fault. For failure
    /// messages.
    pub fn log(&self) -> String {
        self.shared.lock().log.join("\n")
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, line: String) {
        let mut state = self.lock();
        if state.log.len() < MAX_LOG {
            state.log.push(line);
        }
    }

    /// Serves one client connection's requests in turn until it closes.
    fn serve(&self, client: TcpStream) -> io::Result<()> {
        let mut reader = BufReader::new(client.try_clone()?);
        let mut writer = client;
        while let Some(request) = Head::read(&mut reader)? {
            let mut parts = request.start.split(' ');
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
            let path = path.to_string();
            let framing = request.framing(false, false);
            let shown = format!("{method} {path}");
            if let Some(tag) = self.existing_tag_put(&method, &path) {
                relay_body(&mut reader, &mut io::sink(), framing, None)?;
                writer.write_all(&immutable_refusal(&path, &tag))?;
                self.lock().injected.immutable_refused += 1;
                self.note(format!("{shown} -> 400 TAG_INVALID (injected)"));
                continue;
            }
            let action = self.lock().decide(&self.faults, &method, &path, framing);
            let keep_open = match action {
                Action::Refuse(status, retry_after) => {
                    relay_body(&mut reader, &mut io::sink(), framing, None)?;
                    writer.write_all(&refusal(status, retry_after, method == "HEAD"))?;
                    self.note(format!("{shown} -> {status} (injected)"));
                    true
                }
                Action::Forward { cut, delay } => {
                    let incoming = Incoming {
                        head: &request,
                        method: &method,
                        framing,
                    };
                    match self.forward(&incoming, cut, delay, &mut reader, &mut writer)? {
                        Some((status, keep_open)) => {
                            self.note(format!("{shown} -> {status}"));
                            keep_open
                        }
                        None => {
                            self.note(format!("{shown} -> cut mid-body (injected)"));
                            let _ = writer.shutdown(Shutdown::Both);
                            return Ok(());
                        }
                    }
                }
            };
            if !keep_open {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        Ok(())
    }

    /// With immutable tags on, the tag of a manifest `PUT` that the registry already
    /// has; `None` for anything else (pushes by digest, new tags).
    fn existing_tag_put(&self, method: &str, path: &str) -> Option<String> {
        if !self.faults.immutable_tags || method != "PUT" {
            return None;
        }
        let (_, reference) = path.rsplit_once("/manifests/")?;
        if reference.starts_with("sha256:") {
            return None;
        }
        let mut upstream = TcpStream::connect(&self.upstream).ok()?;
        let head = format!(
            "HEAD {path} HTTP/1.1\r\nHost: {}\r\nAccept: {}\r\nConnection: close\r\n\r\n",
            self.upstream,
            crate::media_types::ACCEPT_ALL
        );
        upstream.write_all(head.as_bytes()).ok()?;
        let answer = Head::read(&mut BufReader::new(upstream)).ok()??;
        (answer.status() == 200).then(|| reference.to_string())
    }

    /// Sends the request (whose body `reader` holds next) to the registry over a new
    /// connection and its answer back. `None` when the upload was cut; else the status
    /// and whether the client connection may carry another request.
    fn forward(
        &self,
        request: &Incoming<'_>,
        cut: Option<Cut>,
        delay: Option<Duration>,
        reader: &mut BufReader<TcpStream>,
        writer: &mut TcpStream,
    ) -> io::Result<Option<(u16, bool)>> {
        let framing = request.framing;
        let upstream = TcpStream::connect(&self.upstream)?;
        let mut up_writer = upstream.try_clone()?;
        let mut up_reader = BufReader::new(upstream);
        up_writer.write_all(&request.head.to_bytes())?;
        let budget = cut.map(|_| match framing {
            Framing::Length(n) => (n / 2).max(1),
            _ => CHUNKED_CUT,
        });
        let relayed = relay_body(reader, &mut up_writer, framing, budget)?;
        if let Some(kind) = cut {
            self.lock().settle_cut(kind, relayed == Relayed::Cut);
        }
        if relayed == Relayed::Cut {
            let _ = up_writer.shutdown(Shutdown::Both);
            return Ok(None);
        }
        let mut answer = Head::read(&mut up_reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the registry closed"))?;
        self.lock().injected.forwarded += 1;
        if let Some(delay) = delay {
            thread::sleep(delay);
            self.lock().injected.slowed += 1;
        }
        answer.map_header("location", |v| v.replace(&self.upstream, &self.address));
        let status = answer.status();
        let no_body = request.method == "HEAD" || status < 200 || status == 204 || status == 304;
        let answer_framing = answer.framing(true, no_body);
        writer.write_all(&answer.to_bytes())?;
        relay_body(&mut up_reader, writer, answer_framing, None)?;
        let closes = |h: &Head| h.header("connection").is_some_and(|v| v == "close");
        let keep_open =
            answer_framing != Framing::UntilClose && !closes(&answer) && !closes(request.head);
        Ok(Some((status, keep_open)))
    }
}

impl State {
    /// What to do with a request, using up the fault it meets.
    fn decide(&mut self, faults: &Faults, method: &str, path: &str, framing: Framing) -> Action {
        let forward = Action::Forward {
            cut: None,
            delay: None,
        };
        let read = method == "GET" || method == "HEAD";
        if self.manifest_reads_down && read && path.contains("/manifests/") {
            self.injected.manifest_read_503 += 1;
            return Action::Refuse(503, None);
        }
        if path == "/v2/" && method == "GET" && faults.v2_429 && !self.v2_done {
            self.v2_done = true;
            self.injected.v2_429 += 1;
            return Action::Refuse(429, Some(1));
        }
        if path.contains("/manifests/") && faults.manifest_503 {
            let first = match method {
                "GET" | "HEAD" => self.manifest_reads.insert(path.to_string()),
                "PUT" => self.manifest_puts.insert(path.to_string()),
                _ => false,
            };
            if first {
                match method {
                    "PUT" => self.injected.manifest_put_503 += 1,
                    _ => self.injected.manifest_read_503 += 1,
                }
                return Action::Refuse(503, None);
            }
            return forward;
        }
        if path.contains("/blobs/uploads/") {
            let claim = match method {
                "PATCH" if !self.patch_claimed => Some(Cut::Patch),
                "PUT" if !self.put_claimed => Some(Cut::Put),
                _ => None,
            };
            return match claim {
                Some(kind) if faults.cut_uploads && framing != Framing::None => {
                    match kind {
                        Cut::Patch => self.patch_claimed = true,
                        Cut::Put => self.put_claimed = true,
                    }
                    Action::Forward {
                        cut: Some(kind),
                        delay: None,
                    }
                }
                _ => forward,
            };
        }
        if path.contains("/blobs/") {
            if method == "GET" && faults.blob_get_429 && self.blob_gets.insert(path.to_string()) {
                self.injected.blob_get_429 += 1;
                return Action::Refuse(429, Some(1));
            }
            if let Some(left) = self.rate_limited(faults, method, path) {
                self.injected.window_429 += 1;
                return Action::Refuse(429, Some(left.as_secs_f64().ceil() as u64));
            }
            if method == "HEAD" {
                return Action::Forward {
                    cut: None,
                    delay: faults.slow_blob_heads,
                };
            }
        }
        forward
    }

    /// The time left in the rate-limit window if it covers `path`; the first blob
    /// `HEAD` opens it.
    fn rate_limited(&mut self, faults: &Faults, method: &str, path: &str) -> Option<Duration> {
        let length = faults.rate_window?;
        let now = Instant::now();
        if self.window.is_none() && method == "HEAD" {
            self.window = Some((path.to_string(), now + length));
        }
        let (limited, closes) = self.window.as_ref()?;
        (limited == path && now < *closes).then(|| *closes - now)
    }

    /// Counts a cut that happened, or frees the claim of one that could not be made.
    fn settle_cut(&mut self, kind: Cut, happened: bool) {
        match (kind, happened) {
            (Cut::Patch, true) => self.injected.cut_patch += 1,
            (Cut::Put, true) => self.injected.cut_put += 1,
            (Cut::Patch, false) => self.patch_claimed = false,
            (Cut::Put, false) => self.put_claimed = false,
        }
    }
}

/// ECR's answer to a manifest `PUT` over an existing tag of an immutable repository.
fn immutable_refusal(path: &str, tag: &str) -> Vec<u8> {
    let repository = path
        .trim_start_matches("/v2/")
        .rsplit_once("/manifests/")
        .map_or("", |(name, _)| name);
    let body = format!(
        r#"{{"errors":[{{"code":"TAG_INVALID","message":"The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable."}}]}}"#
    );
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An injected error answer, in distribution's JSON error format.
fn refusal(status: u16, retry_after: Option<u64>, head_only: bool) -> Vec<u8> {
    let (reason, code) = match status {
        429 => ("Too Many Requests", "TOOMANYREQUESTS"),
        _ => ("Service Unavailable", "UNAVAILABLE"),
    };
    let extra = retry_after
        .map(|s| format!("Retry-After: {s}\r\n"))
        .unwrap_or_default();
    let body = format!(
        r#"{{"errors":[{{"code":"{code}","message":"injected by the fault proxy","detail":null}}]}}"#
    );
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
#[path = "fault_proxy_tests.rs"]
mod tests;
