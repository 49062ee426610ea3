//! The decision on a manifest's provenance, from what was read of its
//! in-toto referrers: pure, so that each way of failing is tested without a
//! registry. A candidate passes when its DSSE envelope verifies with the
//! policy's key, carries an in-toto Statement v1 of SLSA provenance v1
//! about the manifest, and names a builder with the policy's prefix (when
//! one is required). The refusal kept is the one that got furthest.

use crate::oci::dsse::{Envelope, PublicKey, VerifyError};
use crate::oci::intoto::{self, DSSE_MEDIA_TYPE, PAYLOAD_TYPE, SLSA_PROVENANCE_V1};
use crate::oci::Digest;
use std::fmt;

/// What a deployment's images must prove.
#[derive(Debug, Clone)]
pub struct Policy {
    pub key: PublicKey,
    /// Required prefix of `runDetails.builder.id`.
    pub builder_prefix: Option<String>,
}

/// A provenance referrer as read from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The referrer's manifest digest.
    pub digest: Digest,
    pub content: Content,
}

/// What a referrer's one layer turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A DSSE envelope's JSON.
    Envelope(Vec<u8>),
    /// A layer of another media type: the statement itself, unsigned.
    Unsigned { media_type: String },
    /// Not an artifact with one layer (or gone from the registry).
    Unreadable { why: String },
}

/// Why a manifest's provenance is not proven. Variants are in order of
/// specificity: a later one got further through the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NoProvenance,
    Unsigned {
        media_type: String,
    },
    Unreadable {
        why: String,
    },
    BadSignature(VerifyError),
    NotProvenance {
        why: String,
    },
    OtherSubject {
        named: Vec<String>,
    },
    OtherBuilder {
        found: Option<String>,
        wanted: String,
    },
}

impl Reason {
    fn rank(&self) -> u8 {
        match self {
            Reason::NoProvenance => 0,
            Reason::Unsigned { .. } => 1,
            Reason::Unreadable { .. } => 2,
            Reason::BadSignature(_) => 3,
            Reason::NotProvenance { .. } => 4,
            Reason::OtherSubject { .. } => 5,
            Reason::OtherBuilder { .. } => 6,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Reason::NoProvenance | Reason::Unsigned { .. } | Reason::Unreadable { .. } => {
                "Build the image with stevedore_image_build provenance = true and \
                 signing_key_file, and deploy that build."
            }
            Reason::BadSignature(_) => {
                "Sign with the private key whose public part is require_provenance's \
                 public_key_file (stevedore_image_build signing_key_file), or point \
                 public_key_file at the public part of the key that signs."
            }
            Reason::NotProvenance { .. } => {
                "The attestation is signed but is not an in-toto Statement v1 with SLSA \
                 provenance v1; build the image with stevedore_image_build provenance = true."
            }
            Reason::OtherSubject { .. } => {
                "The provenance was made for another image (copied, or the image was rebuilt \
                 or retagged after it was attached); rebuild with provenance so it names this \
                 manifest."
            }
            Reason::OtherBuilder { .. } => {
                "Build the image with the builder require_provenance.builder_id names, or \
                 change builder_id."
            }
        }
    }
}

/// The refusal reported for a manifest: the most specific reason, and the
/// referrer it was found in (none for [`Reason::NoProvenance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub referrer: Option<Digest>,
    pub reason: Reason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self
            .referrer
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default();
        match &self.reason {
            Reason::NoProvenance => write!(
                f,
                "no provenance: no referrer of artifact type {PAYLOAD_TYPE}; build it with \
                 stevedore_image_build provenance = true and signing_key_file"
            ),
            Reason::Unsigned { media_type } => write!(
                f,
                "its provenance {at} is not signed: its layer is {media_type}, not a DSSE \
                 envelope ({DSSE_MEDIA_TYPE})"
            ),
            Reason::Unreadable { why } => write!(f, "its provenance {at} is unreadable: {why}"),
            Reason::BadSignature(VerifyError::NoSignatureByKey { key_id, keyids }) => write!(
                f,
                "its provenance {at} is signed by another key: the signatures name key ids \
                 {keyids:?}, and the key of require_provenance is {key_id}"
            ),
            Reason::BadSignature(e @ VerifyError::DoesNotVerify { .. }) => {
                write!(f, "its provenance {at} has a bad signature: {e}")
            }
            Reason::NotProvenance { why } => {
                write!(
                    f,
                    "its signed attestation {at} is not SLSA provenance: {why}"
                )
            }
            Reason::OtherSubject { named } => write!(
                f,
                "its signed provenance {at} is about another image: its statement names {}",
                named.join(", ")
            ),
            Reason::OtherBuilder { found, wanted } => write!(
                f,
                "its signed provenance {at} was made by another builder: builder.id {}, which \
                 does not start with {wanted:?}",
                found
                    .as_deref()
                    .map_or("(none)".to_string(), |b| format!("{b:?}"))
            ),
        }
    }
}

/// Passes when one candidate passes every check; else the most specific
/// refusal (the first of equal ones).
pub fn decide(candidates: &[Candidate], manifest: &Digest, policy: &Policy) -> Result<(), Refusal> {
    let mut best: Option<Refusal> = None;
    for candidate in candidates {
        let reason = match judge(&candidate.content, manifest, policy) {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        if best
            .as_ref()
            .is_none_or(|b| reason.rank() > b.reason.rank())
        {
            best = Some(Refusal {
                referrer: Some(candidate.digest.clone()),
                reason,
            });
        }
    }
    Err(best.unwrap_or(Refusal {
        referrer: None,
        reason: Reason::NoProvenance,
    }))
}

/// One candidate through the checks, in order.
fn judge(content: &Content, manifest: &Digest, policy: &Policy) -> Result<(), Reason> {
    let json = match content {
        Content::Envelope(json) => json,
        Content::Unsigned { media_type } => {
            let media_type = media_type.clone();
            return Err(Reason::Unsigned { media_type });
        }
        Content::Unreadable { why } => return Err(Reason::Unreadable { why: why.clone() }),
    };
    let envelope =
        Envelope::from_json(json).map_err(|e| Reason::Unreadable { why: e.to_string() })?;
    policy
        .key
        .verify_envelope(&envelope)
        .map_err(Reason::BadSignature)?;
    let not_provenance = |why: String| Reason::NotProvenance { why };
    if envelope.payload_type != PAYLOAD_TYPE {
        let found = &envelope.payload_type;
        return Err(not_provenance(format!(
            "its payloadType is {found:?}, not {PAYLOAD_TYPE:?}"
        )));
    }
    let statement =
        intoto::parse_statement(&envelope.payload).map_err(|e| not_provenance(e.to_string()))?;
    if statement.predicate_type != SLSA_PROVENANCE_V1 {
        let found = &statement.predicate_type;
        return Err(not_provenance(format!(
            "its predicateType is {found:?}, not {SLSA_PROVENANCE_V1:?}"
        )));
    }
    let hex = manifest.as_str().strip_prefix("sha256:");
    let about_it = statement.subjects.iter().any(|s| {
        let named = s.digest.get("sha256");
        hex.zip(named)
            .is_some_and(|(h, n)| h.eq_ignore_ascii_case(n))
    });
    if !about_it {
        let named = statement.subjects.iter().map(subject_text).collect();
        return Err(Reason::OtherSubject { named });
    }
    match (&policy.builder_prefix, statement.builder_id) {
        (Some(wanted), found) if !found.as_deref().is_some_and(|f| f.starts_with(wanted)) => {
            Err(Reason::OtherBuilder {
                found,
                wanted: wanted.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// A subject as `algorithm:hex` digests (its name too, when it has one).
fn subject_text(subject: &intoto::Subject) -> String {
    let digests: Vec<String> = subject
        .digest
        .iter()
        .map(|(algorithm, hex)| format!("{algorithm}:{hex}"))
        .collect();
    match subject.name.as_str() {
        "" => digests.join(" "),
        name => format!("{} ({name})", digests.join(" ")),
    }
}

#[cfg(test)]
#[path = "judge_tests.rs"]
mod tests;
