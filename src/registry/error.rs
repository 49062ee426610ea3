//! Registry failures, classified so callers can say what to do: a missing
//! image, bad credentials, an unreachable host, a failing server, or content
//! that does not match its digest. Messages never carry credentials.

use std::time::Duration;

use super::auth::AuthError;
use crate::oci::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{reference} was not found in the registry: {detail}")]
    NotFound { reference: String, detail: String },
    #[error(
        "registry {registry} refused the credentials for this request: {detail}; check \
         registry_auth or the docker config for this host"
    )]
    Unauthorized { registry: String, detail: String },
    #[error("registry {registry} is unreachable: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("registry {registry} answered HTTP {status}: {detail}")]
    Server {
        registry: String,
        status: u16,
        detail: String,
        /// How long the registry asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
    },
    #[error("registry {registry} rejected the request: {detail}")]
    Rejected { registry: String, detail: String },
    #[error(
        "content digest mismatch: expected {expected}, got {actual}; the registry or something \
         between us and it served different bytes"
    )]
    DigestMismatch { expected: String, actual: String },
    #[error("invalid manifest: {detail}")]
    InvalidManifest { detail: String },
    #[error("blob {digest} is larger than the {limit} bytes allowed")]
    TooLarge { digest: Digest, limit: u64 },
    #[error("cannot get credentials for {registry}: {source}")]
    Auth { registry: String, source: AuthError },
    #[error("cannot read {path}: {detail}")]
    LocalFile { path: String, detail: String },
    #[error("{source} (gave up after {attempts} attempts)")]
    Retried {
        attempts: u32,
        source: Box<RegistryError>,
    },
    #[error("cancelled")]
    Cancelled,
}

impl RegistryError {
    /// The tag, digest or repository does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }

    /// Worth retrying: the network, a 5xx or rate limiting.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Server { status, .. } => *status >= 500 || *status == 429,
            RegistryError::Retried { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// The registry answered, refusing: a write that failed this way changed
    /// nothing. A broken connection, a 5xx or a cancel leaves it open whether
    /// the registry stored the write before failing.
    pub fn write_refused(&self) -> bool {
        match self {
            RegistryError::NotFound { .. }
            | RegistryError::Unauthorized { .. }
            | RegistryError::Rejected { .. }
            | RegistryError::InvalidManifest { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::Auth { .. }
            | RegistryError::LocalFile { .. } => true,
            RegistryError::Server { status, .. } => *status < 500,
            RegistryError::Retried { source, .. } => source.write_refused(),
            RegistryError::Unreachable { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::Cancelled => false,
        }
    }

    /// How long the registry asked to be left alone before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Server { retry_after, .. } => *retry_after,
            RegistryError::Retried { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// The distribution spec's error envelope: `{"errors":[{"code":…,"message":…}]}`.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<EnvelopeError>,
}

#[derive(serde::Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Classifies an HTTP answer we requested ourselves. Status decides
/// retryability first: distribution answers some 5xx with an error envelope,
/// and those must stay transient rather than become "rejected". Then the
/// envelope's codes, then the status alone.
pub(crate) fn from_status(
    status: u16,
    body: &str,
    registry: &str,
    reference: &str,
) -> RegistryError {
    let registry = registry.to_string();
    if status >= 500 || status == 429 {
        return RegistryError::Server {
            registry,
            status,
            detail: truncate(body.trim()),
            retry_after: None,
        };
    }
    let envelope = serde_json::from_str::<Envelope>(body)
        .ok()
        .filter(|e| !e.errors.is_empty());
    if let Some(envelope) = envelope {
        let detail = envelope
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.clone()
                } else {
                    e.message.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let any = |wanted: &[&str]| {
            envelope
                .errors
                .iter()
                .any(|e| wanted.contains(&e.code.to_ascii_uppercase().as_str()))
        };
        return if any(&[
            "MANIFEST_UNKNOWN",
            "NAME_UNKNOWN",
            "BLOB_UNKNOWN",
            "NOT_FOUND",
        ]) {
            RegistryError::NotFound {
                reference: reference.into(),
                detail,
            }
        } else if any(&["UNAUTHORIZED", "DENIED"]) || status == 401 || status == 403 {
            // An envelope with an unfamiliar code on a 401/403 is still a
            // credentials problem.
            RegistryError::Unauthorized { registry, detail }
        } else if any(&["TOOMANYREQUESTS"]) {
            RegistryError::Server {
                registry,
                status: 429,
                detail,
                retry_after: None,
            }
        } else {
            RegistryError::Rejected { registry, detail }
        };
    }
    let detail = if body.trim().is_empty() {
        format!("HTTP {status}")
    } else {
        truncate(body.trim())
    };
    match status {
        404 => RegistryError::NotFound {
            reference: reference.into(),
            detail,
        },
        401 | 403 => RegistryError::Unauthorized { registry, detail },
        // The request itself was refused (a 400 such as "Client sent an HTTP
        // request to an HTTPS server"): asking again cannot help, and "try
        // again later" would mislead.
        _ => RegistryError::Rejected {
            registry,
            detail: format!("HTTP {status}: {detail}"),
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries;
/// callers fall back to their own backoff).
pub(crate) fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

pub(crate) use crate::diag::error_chain;

/// Error bodies can be whole HTML pages; keep diagnostics readable.
fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_registry_envelopes() {
        let envelope = |code: &str| format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#);
        assert!(from_status(404, &envelope("MANIFEST_UNKNOWN"), "r", "r/x:1").is_not_found());
        assert!(from_status(404, &envelope("NAME_UNKNOWN"), "r", "r/x:1").is_not_found());
        assert!(matches!(
            from_status(403, &envelope("DENIED"), "r", "x"),
            RegistryError::Unauthorized { .. }
        ));
        // Some registries say "too many requests" in the envelope of a 4xx.
        assert!(from_status(400, &envelope("TOOMANYREQUESTS"), "r", "x").is_transient());
        assert!(matches!(
            from_status(400, &envelope("MANIFEST_INVALID"), "r", "x"),
            RegistryError::Rejected { .. }
        ));
        let server = from_status(503, "busy", "r", "x");
        assert!(server.is_transient() && !server.is_not_found());
        assert_eq!(server.to_string(), "registry r answered HTTP 503: busy");
        let missing = from_status(404, "", "r", "r/x:1");
        assert!(missing.is_not_found(), "{missing:?}");
    }

    #[test]
    fn classifies_answers_to_our_own_requests() {
        let unknown = r#"{"errors":[{"code":"UNKNOWN","message":"disk full"}]}"#;
        assert!(from_status(500, unknown, "r", "x").is_transient());
        assert!(from_status(429, "", "r", "x").is_transient());
        let denied = from_status(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            "r",
            "x",
        );
        assert!(
            matches!(denied, RegistryError::Unauthorized { .. }),
            "{denied:?}"
        );
        assert!(matches!(
            from_status(403, "", "r", "x"),
            RegistryError::Unauthorized { .. }
        ));
        let invalid = from_status(
            400,
            r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#,
            "r",
            "x",
        );
        assert!(!invalid.is_transient());
        assert!(invalid.to_string().contains("did not match"), "{invalid}");
        // A TLS server's answer to plain HTTP: final, and not blamed on the registry's health.
        let plain = from_status(
            400,
            "Client sent an HTTP request to an HTTPS server.\n",
            "r",
            "x",
        );
        assert!(matches!(plain, RegistryError::Rejected { .. }), "{plain:?}");
        assert!(plain.to_string().contains("HTTPS server"), "{plain}");
        let retried = RegistryError::Retried {
            attempts: 3,
            source: Box::new(from_status(502, "", "r", "x")),
        };
        assert!(retried.is_transient());
    }

    #[test]
    fn truncates_long_bodies_on_char_boundaries() {
        let long = "é".repeat(400);
        assert!(truncate(&long).chars().count() <= 151);
    }
}
