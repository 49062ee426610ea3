//! A front for a [`Registry`] that offers the referrers API of the OCI distribution spec
//! v1.1, which distribution 2.8 lacks, so tests can drive a client's API path against a
//! real registry; and, being a fake, it checks what clients send it as the spec says a
//! registry with the API would.
//!
//! It listens on a free loopback port (plain HTTP only), one thread per client
//! connection, and sends each request to the registry over a fresh connection, byte for
//! byte (a `Location` naming the registry is rewritten to name the front). On top:
//! - a manifest `PUT` whose body has a `subject` and that the registry accepted (201) is
//!   remembered as a referrer of that subject (its `artifactType`, else the config's media
//!   type, and its annotations), and the 201 gains `OCI-Subject: <subject digest>`;
//! - `GET /v2/<name>/referrers/<digest>[?artifactType=<type>]` is answered here with an
//!   OCI index of those referrers (empty when none), filtered when asked, after asking the
//!   registry whether the request's `Authorization` may read `<name>` (a refusal is passed
//!   on with the registry's challenge); a reference that is not a digest gets 400;
//! - a `DELETE` of a manifest the registry answered 202 drops it from every list of its
//!   repository.
//!
//! What a client got wrong is kept in [`ReferrersFront::violations`]: a manifest whose
//! `Content-Type` is not its `mediaType`, a `subject` lacking its digest, size or media
//! type, an artifact (empty config) without `artifactType`, a referrers `GET` of a
//! non-digest, and any push of a `sha256-<hex>` fallback tag, which a client seeing
//! `OCI-Subject` has no reason to write. Requests of each kind are counted, so a test can
//! prove the API path was the one taken.

use std::io::{self, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::acceptor::Acceptor;
use crate::http1::{relay_body, Framing, Head, Relayed};
use crate::Registry;

mod spec;

use spec::{artifact_type_filter, dechunk, error, index_answer, inspect_put, is_digest, is_tag};
use spec::{response, unreachable, Inspection, Route, Store};

/// Largest manifest taken, distribution's own limit.
const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// A running front; stopped (and its client connections shut) when dropped.
pub struct ReferrersFront {
    shared: Arc<Shared>,
    acceptor: Acceptor,
}

struct Shared {
    upstream: String,
    address: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    referrers: Store,
    violations: Vec<String>,
    referrers_gets: u64,
    subject_puts: u64,
    fallback_tag_puts: u64,
}

/// A client connection: its reader (buffered) and writer.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// A connection to the registry carrying one request.
struct Upstream {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl ReferrersFront {
    /// A front for `registry`, which must serve plain HTTP.
    pub fn start(registry: &Registry) -> ReferrersFront {
        assert!(
            registry.url().starts_with("http://"),
            "the referrers front speaks plain HTTP only; {} serves HTTPS",
            registry.address
        );
        ReferrersFront::in_front_of(&registry.address)
    }

    /// A front for whatever serves plain HTTP at `upstream` (`host:port`).
    pub fn in_front_of(upstream: &str) -> ReferrersFront {
        let bound = Acceptor::bind("the referrers front");
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            address: bound.address().to_string(),
            state: Mutex::default(),
        });
        let serving = shared.clone();
        let acceptor = bound.serve(move |_, client| {
            let _ = serving.serve(client);
        });
        ReferrersFront { shared, acceptor }
    }

    /// `127.0.0.1:PORT`, to use where the registry's address would go.
    pub fn host(&self) -> &str {
        self.acceptor.address()
    }

    /// What clients did that a registry with the referrers API would not want, one line each.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// `GET`s of the referrers API received (answered or refused).
    pub fn referrers_gets(&self) -> u64 {
        self.shared.lock().referrers_gets
    }

    /// Manifest `PUT`s received whose body has a `subject`.
    pub fn subject_puts(&self) -> u64 {
        self.shared.lock().subject_puts
    }

    /// Manifest `PUT`s received to a `sha256-<hex>` fallback tag.
    pub fn fallback_tag_puts(&self) -> u64 {
        self.shared.lock().fallback_tag_puts
    }

    /// The referrer descriptors of `subject` in repository `name`, as the API lists them.
    pub fn referrers(&self, name: &str, subject: &str) -> Vec<Value> {
        self.shared.lock().referrers.listed(name, subject, None)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves one client connection's requests in turn until it closes.
    fn serve(&self, client: TcpStream) -> io::Result<()> {
        let mut peer = Peer {
            reader: BufReader::new(client.try_clone()?),
            writer: client,
        };
        while let Some(request) = Head::read(&mut peer.reader)? {
            let mut parts = request.start.split(' ');
            let method = parts.next().unwrap_or("").to_string();
            let route = Route::of(&method, parts.next().unwrap_or(""));
            let keep_open = match route {
                Route::Referrers {
                    name,
                    reference,
                    query,
                } => self.list(&request, &name, &reference, &query, &mut peer)?,
                Route::ManifestPut { name, reference } => {
                    self.put_manifest(&request, &name, &reference, &mut peer)?
                }
                Route::ManifestDelete { name, reference } => {
                    let (status, keep_open) = self.forward(&request, &method, &mut peer)?;
                    if status == 202 {
                        self.lock().referrers.forget(&name, &reference);
                    }
                    keep_open
                }
                Route::Forward => self.forward(&request, &method, &mut peer)?.1,
            };
            if !keep_open {
                let _ = peer.writer.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Opens a connection to the registry and sends it `head`; the body is the caller's.
    fn open(&self, head: &Head) -> io::Result<Upstream> {
        let stream = TcpStream::connect(&self.upstream)?;
        let mut writer = stream.try_clone()?;
        writer.write_all(&head.to_bytes())?;
        Ok(Upstream {
            writer,
            reader: BufReader::new(stream),
        })
    }

    /// Sends the request (whose body `peer` holds next) to the registry and its answer
    /// back; the status, and whether the client connection may carry another request.
    fn forward(&self, request: &Head, method: &str, peer: &mut Peer) -> io::Result<(u16, bool)> {
        let Ok(mut up) = self.open(request) else {
            peer.writer.write_all(&unreachable())?;
            return Ok((502, false));
        };
        relay_body(
            &mut peer.reader,
            &mut up.writer,
            request.framing(false, false),
            None,
        )?;
        let answer = up.answer()?;
        let status = answer.status();
        Ok((
            status,
            self.pass_back(answer, &mut up, request, method, peer)?,
        ))
    }

    /// Sends the registry's `answer` head (maybe edited) and its body on to the client;
    /// whether the client connection may carry another request.
    fn pass_back(
        &self,
        mut answer: Head,
        up: &mut Upstream,
        request: &Head,
        method: &str,
        peer: &mut Peer,
    ) -> io::Result<bool> {
        answer.map_header("location", |v| v.replace(&self.upstream, &self.address));
        let status = answer.status();
        let no_body = method == "HEAD" || status < 200 || status == 204 || status == 304;
        let framing = answer.framing(true, no_body);
        peer.writer.write_all(&answer.to_bytes())?;
        relay_body(&mut up.reader, &mut peer.writer, framing, None)?;
        Ok(framing != Framing::UntilClose && !closes(&answer) && !closes(request))
    }

    /// A manifest `PUT`: checked, forwarded, and remembered as a referrer when it has a
    /// subject and the registry took it.
    fn put_manifest(
        &self,
        request: &Head,
        name: &str,
        reference: &str,
        peer: &mut Peer,
    ) -> io::Result<bool> {
        let framing = request.framing(false, false);
        let mut wire = Vec::new();
        let budget = Some(MAX_MANIFEST + 1);
        if relay_body(&mut peer.reader, &mut wire, framing, budget)? == Relayed::Cut {
            peer.writer
                .write_all(&error(400, "SIZE_INVALID", "manifest over 4 MiB"))?;
            return Ok(false);
        }
        let body = match framing {
            Framing::Chunked => dechunk(&wire),
            _ => Some(wire.clone()),
        };
        let Some(body) = body else {
            peer.writer
                .write_all(&error(400, "MANIFEST_INVALID", "malformed chunks"))?;
            return Ok(false);
        };
        let seen = inspect_put(name, reference, request.header("content-type"), &body);
        self.lock().note_put(&seen);
        let Ok(mut up) = self.open(request) else {
            peer.writer.write_all(&unreachable())?;
            return Ok(false);
        };
        up.writer.write_all(&wire)?;
        up.writer.flush()?;
        let mut answer = up.answer()?;
        if let (201, Some((subject, descriptor))) = (answer.status(), seen.referrer) {
            let digest = self.digest_of(&answer, &body, name, reference);
            answer.lines.push(format!("OCI-Subject: {subject}"));
            let size = body.len();
            self.lock()
                .referrers
                .record(name, &subject, descriptor, digest, size);
        }
        self.pass_back(answer, &mut up, request, "PUT", peer)
    }

    /// The digest of a stored manifest: its bytes' sha256, which the registry's
    /// `Docker-Content-Digest` must name (a violation of its own when not).
    fn digest_of(&self, answer: &Head, body: &[u8], name: &str, reference: &str) -> String {
        let computed = crate::sha256_digest(body);
        let told = answer.header("docker-content-digest");
        if told != Some(computed.as_str()) {
            self.lock().violations.push(format!(
                "PUT /v2/{name}/manifests/{reference}: the registry answered \
                 Docker-Content-Digest {told:?}, the body's digest is {computed}"
            ));
        }
        computed
    }

    /// `GET /v2/<name>/referrers/<reference>?<query>`, answered here.
    fn list(
        &self,
        request: &Head,
        name: &str,
        reference: &str,
        query: &str,
        peer: &mut Peer,
    ) -> io::Result<bool> {
        relay_body(
            &mut peer.reader,
            &mut io::sink(),
            request.framing(false, false),
            None,
        )?;
        self.lock().referrers_gets += 1;
        let keep_open = !closes(request);
        if !is_digest(reference) {
            let what = if is_tag(reference) {
                "a tag"
            } else {
                "no digest"
            };
            self.lock().violations.push(format!(
                "GET /v2/{name}/referrers/{reference}: the reference is {what}"
            ));
            let message = "the referrers API takes a digest";
            peer.writer
                .write_all(&error(400, "DIGEST_INVALID", message))?;
            return Ok(keep_open);
        }
        match self.may_read(request, name) {
            Ok(None) => {}
            Ok(Some(refusal)) => {
                peer.writer.write_all(&refusal)?;
                return Ok(keep_open);
            }
            Err(_) => {
                peer.writer.write_all(&unreachable())?;
                return Ok(false);
            }
        }
        let filter = artifact_type_filter(query);
        let manifests = self
            .lock()
            .referrers
            .listed(name, reference, filter.as_deref());
        peer.writer
            .write_all(&index_answer(manifests, filter.is_some()))?;
        Ok(keep_open)
    }

    /// Asks the registry whether the request's `Authorization` may read repository `name`,
    /// with a read of its own (`GET /v2/<name>/tags/list`); when not, the answer to give:
    /// the registry's status, challenge (naming the repository's scope) and error body.
    fn may_read(&self, request: &Head, name: &str) -> io::Result<Option<Vec<u8>>> {
        let host = request.header("host").unwrap_or(&self.upstream);
        let mut head = format!(
            "GET /v2/{name}/tags/list?n=1 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        );
        if let Some(authorization) = request.header("authorization") {
            head.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect(&self.upstream)?;
        stream.write_all(head.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let answer = Head::read(&mut reader)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let status = answer.status();
        if status != 401 && status != 403 {
            return Ok(None);
        }
        let mut body = Vec::new();
        relay_body(
            &mut reader,
            &mut body,
            answer.framing(true, false),
            Some(64 * 1024),
        )?;
        let challenge = answer
            .header("www-authenticate")
            .map(|c| format!("WWW-Authenticate: {c}\r\n"))
            .unwrap_or_default();
        let json = "application/json; charset=utf-8";
        Ok(Some(response(status, json, &challenge, &body)))
    }
}

impl State {
    fn note_put(&mut self, seen: &Inspection) {
        self.violations.extend(seen.violations.iter().cloned());
        self.subject_puts += u64::from(seen.has_subject);
        self.fallback_tag_puts += u64::from(seen.fallback_tag);
    }
}

impl Upstream {
    fn answer(&mut self) -> io::Result<Head> {
        Head::read(&mut self.reader)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the registry closed"))
    }
}

fn closes(head: &Head) -> bool {
    head.header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

#[cfg(test)]
#[path = "referrers_front_tests.rs"]
mod tests;
