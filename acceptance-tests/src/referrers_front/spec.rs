//! What the OCI distribution spec v1.1 makes of the requests [`super::ReferrersFront`]
//! handles: which requests are its business ([`Route`]), what a manifest `PUT` must carry
//! and which referrer it makes ([`inspect_put`]), and the referrers lists kept ([`Store`]).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::media_types::{OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};

/// Referrer descriptors by (repository, subject digest), in the order pushed.
#[derive(Debug, Default)]
pub(super) struct Store {
    lists: HashMap<(String, String), Vec<Value>>,
}

impl Store {
    /// Adds the referrer `digest` of `subject` (or replaces it, pushed again), with the
    /// descriptor [`inspect_put`] made.
    pub(super) fn record(
        &mut self,
        name: &str,
        subject: &str,
        mut descriptor: Map<String, Value>,
        digest: String,
        size: usize,
    ) {
        descriptor.insert("digest".into(), Value::String(digest.clone()));
        descriptor.insert("size".into(), Value::from(size));
        let key = (name.to_string(), subject.to_string());
        let list = self.lists.entry(key).or_default();
        list.retain(|d| d["digest"] != digest.as_str());
        list.push(Value::Object(descriptor));
    }

    /// Drops the deleted manifest `digest` from every list of repository `name`.
    pub(super) fn forget(&mut self, name: &str, digest: &str) {
        for ((repository, _), list) in self.lists.iter_mut() {
            if repository == name {
                list.retain(|d| d["digest"] != digest);
            }
        }
    }

    /// The referrers of `subject` in `name`, only those of `artifact_type` when given.
    pub(super) fn listed(
        &self,
        name: &str,
        subject: &str,
        artifact_type: Option<&str>,
    ) -> Vec<Value> {
        let key = (name.to_string(), subject.to_string());
        let all = self.lists.get(&key).into_iter().flatten();
        all.filter(|d| artifact_type.is_none_or(|t| d["artifactType"] == t))
            .cloned()
            .collect()
    }
}

/// What the front does with a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Route {
    Referrers {
        name: String,
        reference: String,
        query: String,
    },
    ManifestPut {
        name: String,
        reference: String,
    },
    ManifestDelete {
        name: String,
        reference: String,
    },
    Forward,
}

/// What a manifest `PUT` carries that matters here.
#[derive(Debug, Default)]
pub(super) struct Inspection {
    pub(super) violations: Vec<String>,
    pub(super) fallback_tag: bool,
    pub(super) has_subject: bool,
    /// The subject's digest and the referrer's descriptor (its digest still unknown).
    pub(super) referrer: Option<(String, Map<String, Value>)>,
}

impl Route {
    pub(super) fn of(method: &str, target: &str) -> Route {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Route::Forward;
        };
        let split = |marker| {
            let (name, reference) = rest.rsplit_once(marker)?;
            let fits = !name.is_empty() && !reference.is_empty() && !reference.contains('/');
            fits.then(|| (name.to_string(), reference.to_string()))
        };
        match (method, split("/referrers/"), split("/manifests/")) {
            ("GET", Some((name, reference)), _) => Route::Referrers {
                name,
                reference,
                query: query.to_string(),
            },
            ("PUT", None, Some((name, reference))) => Route::ManifestPut { name, reference },
            ("DELETE", None, Some((name, reference))) => Route::ManifestDelete { name, reference },
            _ => Route::Forward,
        }
    }
}

/// Checks a manifest `PUT` of `body` to `reference` and finds the referrer it makes.
pub(super) fn inspect_put(
    name: &str,
    reference: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Inspection {
    let mut seen = Inspection::default();
    let at = format!("PUT /v2/{name}/manifests/{reference}");
    let mut flag = |what: String| seen.violations.push(format!("{at}: {what}"));
    seen.fallback_tag = is_fallback_tag(reference);
    if seen.fallback_tag {
        flag("a referrers fallback tag, though the registry offers the API".into());
    }
    let Ok(Value::Object(manifest)) = serde_json::from_slice::<Value>(body) else {
        flag("the body is not a JSON object".into());
        return seen;
    };
    let content_type = content_type
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    let media_type = text(manifest.get("mediaType"));
    match (content_type, media_type) {
        (None, _) => flag("no Content-Type".into()),
        (Some(c), Some(m)) if c != m => flag(format!("Content-Type {c} but mediaType {m}")),
        _ => {}
    }
    let media_type = media_type.or(content_type).unwrap_or("");
    let config_type = text(manifest.get("config").and_then(|c| c.get("mediaType")));
    let artifact_type = text(manifest.get("artifactType"));
    if config_type == Some(OCI_EMPTY) && artifact_type.is_none() {
        flag("an artifact (empty config) without artifactType".into());
    }
    let Some(subject) = manifest.get("subject") else {
        return seen;
    };
    seen.has_subject = true;
    let digest = text(subject.get("digest"));
    for (field, present) in [
        ("digest", digest.is_some_and(is_digest)),
        ("size", subject.get("size").is_some_and(Value::is_u64)),
        ("mediaType", text(subject.get("mediaType")).is_some()),
    ] {
        if !present {
            flag(format!("its subject has no valid {field}"));
        }
    }
    let mut descriptor = Map::new();
    descriptor.insert("mediaType".into(), media_type.into());
    let artifact_type = match media_type {
        OCI_MANIFEST => artifact_type.or(config_type),
        _ => artifact_type,
    };
    if let Some(t) = artifact_type {
        descriptor.insert("artifactType".into(), t.into());
    }
    match manifest.get("annotations") {
        Some(Value::Object(a)) if !a.is_empty() => {
            descriptor.insert("annotations".into(), Value::Object(a.clone()));
        }
        _ => {}
    }
    let oci = media_type == OCI_MANIFEST || media_type == OCI_INDEX;
    let referrer = digest.filter(|d| oci && is_digest(d));
    seen.referrer = referrer.map(|d| (d.to_string(), descriptor));
    seen
}

/// A non-empty string value.
fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `sha256:` and 64 lowercase hex digits, the only digests the front takes.
pub(super) fn is_digest(reference: &str) -> bool {
    reference.strip_prefix("sha256:").is_some_and(is_hex_64)
}

/// `sha256-<64 hex>`: the tag the referrers fallback names a subject's referrers by.
pub(super) fn is_fallback_tag(reference: &str) -> bool {
    reference.strip_prefix("sha256-").is_some_and(is_hex_64)
}

fn is_hex_64(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A tag as distribution spells one: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub(super) fn is_tag(reference: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = reference.bytes();
    bytes.next().is_some_and(ok)
        && reference.len() <= 128
        && bytes.all(|b| ok(b) || b == b'.' || b == b'-')
}

/// The `artifactType` asked for in a query string, percent-decoded; none when empty.
pub(super) fn artifact_type_filter(query: &str) -> Option<String> {
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("artifactType="))?;
    let decoded = percent_decode(value).unwrap_or_else(|| value.to_string());
    (!decoded.is_empty()).then_some(decoded)
}

/// `%XX` escapes undone (a `+` stays a `+`: media types have them); `None` when malformed.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let high = char::from(bytes.next()?).to_digit(16)?;
        let low = char::from(bytes.next()?).to_digit(16)?;
        out.push(u8::try_from(high * 16 + low).ok()?);
    }
    String::from_utf8(out).ok()
}

/// The payload of a chunked body as it came on the wire; `None` when malformed.
pub(super) fn dechunk(wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        let end = rest.iter().position(|&b| b == b'\n')?;
        let line = std::str::from_utf8(rest.get(..end)?).ok()?;
        let size = line.trim_end().split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        rest = rest.get(end + 1..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size..)?;
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))?;
    }
}

/// The answer to a referrers `GET`: an index of `manifests`, saying whether they were
/// `filtered` by artifact type.
pub(super) fn index_answer(manifests: Vec<Value>, filtered: bool) -> Vec<u8> {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let applied = match filtered {
        true => "OCI-Filters-Applied: artifactType\r\n",
        false => "",
    };
    response(200, OCI_INDEX, applied, index.to_string().as_bytes())
}

/// An answer made here, framed by its length.
pub(super) fn response(
    status: u16,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        _ => "Bad Gateway",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\n{extra_headers}\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// An error answer in distribution's JSON format.
pub(super) fn error(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = json!({"errors": [{"code": code, "message": message, "detail": null}]});
    let json = "application/json; charset=utf-8";
    response(status, json, "", body.to_string().as_bytes())
}

/// The answer when the registry cannot be reached.
pub(super) fn unreachable() -> Vec<u8> {
    error(502, "UNAVAILABLE", "the registry is unreachable")
}
