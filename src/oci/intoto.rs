//! The provenance statement published beside an image: an in-toto
//! Statement v1 (<https://github.com/in-toto/attestation>, `spec/v1`) whose
//! predicate is SLSA Provenance v1 (<https://slsa.dev/spec/v1.0/provenance>).
//! It says which image it is about (by digest), what was asked of the build
//! (Dockerfile, target, platform, arguments, context), what the build used
//! (the context and base images, by digest) and who built it, when.
//!
//! The publisher fills a [`ProvenanceFacts`]; [`statement`] turns it into
//! the JSON that gets signed (see [`super::dsse`]). The JSON is written from
//! structs with a fixed field order and sorted maps, so the same facts
//! always give the same bytes. [`parse_statement`] reads back what a
//! verifier needs. Secrets appear by id only: the facts have no field a
//! secret's value could go in.

use std::collections::{BTreeMap, BTreeSet};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The `predicateType` of SLSA Provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The DSSE `payloadType` of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of a DSSE envelope stored as a blob in a registry.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation naming an attestation layer's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "in-toto.io/predicate-type";
/// Our `buildType`: the URI saying how to read `externalParameters`.
pub const BUILD_TYPE: &str = "https://github.com/stevedore/terraform-provider-stevedore/build/v1";

/// What the publisher knows about one build, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceFacts {
    /// The repository the image is pushed to, e.g. `127.0.0.1:5000/web`.
    pub subject_name: String,
    /// The image's digest, `sha256:<hex>`.
    pub subject_digest: String,
    pub dockerfile: String,
    pub target: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: String,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The build context's hash, `sha256:<hex>` or the bare hex.
    pub context_hash: String,
    /// The ids of the secrets the build was given; never their values.
    pub secret_ids: Vec<String>,
    pub base_images: Vec<BaseImage>,
    /// Who built it, e.g.
    /// `https://github.com/stevedore/terraform-provider-stevedore@0.1.0#builder=default`.
    pub builder_id: String,
    /// Versions of the builder's parts (stevedore, the Docker engine, ...).
    pub builder_version: BTreeMap<String, String>,
    pub invocation_id: String,
    pub started_on: OffsetDateTime,
    pub finished_on: OffsetDateTime,
}

/// An image a build started `FROM`, as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// e.g. `docker.io/library/node:22`.
    pub uri: String,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// Why facts make no statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    #[error("the provenance needs a subject: the image's repository name is empty")]
    EmptySubject,
    #[error("{field} is {value:?}, not a sha256 digest (\"sha256:\" and 64 hex digits)")]
    BadDigest { field: &'static str, value: String },
    #[error("{field} cannot be written as an RFC 3339 time: {reason}")]
    BadTime { field: &'static str, reason: String },
}

/// Why bytes are not a statement a verifier can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("the statement is not JSON of the expected shape: {reason}")]
    Malformed { reason: String },
    #[error("the statement has no {field}")]
    Missing { field: &'static str },
    #[error("the statement's _type is {found:?}; expected {STATEMENT_TYPE:?}")]
    WrongType { found: String },
    #[error("the statement has no subject")]
    NoSubject,
}

/// A DigestSet: lowercase algorithm name to lowercase hex.
pub type DigestSet = BTreeMap<String, String>;

/// What a verifier reads back from a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub statement_type: String,
    pub predicate_type: String,
    pub subjects: Vec<Subject>,
    /// `predicate.runDetails.builder.id`, when the predicate has one.
    pub builder_id: Option<String>,
}

/// One thing a statement is about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub name: String,
    pub digest: DigestSet,
}

/// The statement's compact JSON, the same bytes for the same facts.
pub fn statement(facts: &ProvenanceFacts) -> Result<Vec<u8>, ProvenanceError> {
    if facts.subject_name.is_empty() {
        return Err(ProvenanceError::EmptySubject);
    }
    let context = sha256_set("context_hash", &facts.context_hash, true)?;
    let mut dependencies = vec![Dependency {
        uri: "context",
        digest: context.clone(),
    }];
    for base in &facts.base_images {
        let digest = sha256_set("base image digest", &base.digest, false)?;
        dependencies.push(Dependency {
            uri: &base.uri,
            digest,
        });
    }
    let out = StatementOut {
        type_: STATEMENT_TYPE,
        subject: [SubjectOut {
            name: &facts.subject_name,
            digest: sha256_set("subject_digest", &facts.subject_digest, false)?,
        }],
        predicate_type: SLSA_PROVENANCE_V1,
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE,
                external_parameters: external_parameters(facts, &context),
                resolved_dependencies: dependencies,
            },
            run_details: run_details(facts)?,
        },
    };
    // Structs of strings and string-keyed maps: serializing cannot fail.
    Ok(serde_json::to_vec(&out).unwrap_or_else(|_| unreachable!()))
}

fn external_parameters<'a>(facts: &'a ProvenanceFacts, context: &DigestSet) -> Parameters<'a> {
    let context_hex = context
        .get("sha256")
        .map(String::as_str)
        .unwrap_or_default();
    Parameters {
        dockerfile: &facts.dockerfile,
        target: facts.target.as_deref(),
        platform: &facts.platform,
        build_args: &facts.build_args,
        labels: &facts.labels,
        context_hash: format!("sha256:{context_hex}"),
        secret_ids: facts.secret_ids.iter().map(String::as_str).collect(),
    }
}

fn run_details(facts: &ProvenanceFacts) -> Result<RunDetails<'_>, ProvenanceError> {
    Ok(RunDetails {
        builder: Builder {
            id: &facts.builder_id,
            version: &facts.builder_version,
        },
        metadata: Metadata {
            invocation_id: &facts.invocation_id,
            started_on: rfc3339_utc("started_on", facts.started_on)?,
            finished_on: rfc3339_utc("finished_on", facts.finished_on)?,
        },
    })
}

/// `{"sha256": hex}` from `sha256:<hex>` (or the bare hex when
/// `bare_allowed`), the hex lowercased.
fn sha256_set(
    field: &'static str,
    value: &str,
    bare_allowed: bool,
) -> Result<DigestSet, ProvenanceError> {
    let hex = match value.strip_prefix("sha256:") {
        Some(hex) => hex,
        None if bare_allowed => value,
        None => "",
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ProvenanceError::BadDigest {
            field,
            value: value.to_string(),
        });
    }
    Ok(BTreeMap::from([(
        "sha256".to_string(),
        hex.to_ascii_lowercase(),
    )]))
}

/// RFC 3339 in UTC to the second, e.g. `2026-12-07T10:00:00Z`.
fn rfc3339_utc(field: &'static str, at: OffsetDateTime) -> Result<String, ProvenanceError> {
    let bad = |reason: String| ProvenanceError::BadTime { field, reason };
    let utc = at
        .checked_to_offset(UtcOffset::UTC)
        .ok_or_else(|| bad("out of range in UTC".to_string()))?;
    let whole = utc.replace_nanosecond(0).map_err(|e| bad(e.to_string()))?;
    whole.format(&Rfc3339).map_err(|e| bad(e.to_string()))
}

#[derive(serde::Serialize)]
struct StatementOut<'a> {
    #[serde(rename = "_type")]
    type_: &'static str,
    subject: [SubjectOut<'a>; 1],
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Provenance<'a>,
}

#[derive(serde::Serialize)]
struct SubjectOut<'a> {
    name: &'a str,
    digest: DigestSet,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Provenance<'a> {
    build_definition: BuildDefinition<'a>,
    run_details: RunDetails<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition<'a> {
    build_type: &'static str,
    external_parameters: Parameters<'a>,
    resolved_dependencies: Vec<Dependency<'a>>,
}

/// What was asked of the build; its meaning is [`BUILD_TYPE`]'s.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Parameters<'a> {
    dockerfile: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    platform: &'a str,
    build_args: &'a BTreeMap<String, String>,
    labels: &'a BTreeMap<String, String>,
    context_hash: String,
    /// Sorted and without repeats, whatever order the build listed them in.
    secret_ids: BTreeSet<&'a str>,
}

#[derive(serde::Serialize)]
struct Dependency<'a> {
    uri: &'a str,
    digest: DigestSet,
}

#[derive(serde::Serialize)]
struct RunDetails<'a> {
    builder: Builder<'a>,
    metadata: Metadata<'a>,
}

#[derive(serde::Serialize)]
struct Builder<'a> {
    id: &'a str,
    version: &'a BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    invocation_id: &'a str,
    started_on: String,
    finished_on: String,
}

/// Reads a statement's type, predicate type, subjects and builder id;
/// other fields are ignored. Fails when the JSON is not a Statement v1 or
/// lacks its predicate type or subjects.
pub fn parse_statement(json: &[u8]) -> Result<Statement, StatementError> {
    let read: StatementIn =
        serde_json::from_slice(json).map_err(|e| StatementError::Malformed {
            reason: e.to_string(),
        })?;
    let statement_type = read
        .type_
        .ok_or(StatementError::Missing { field: "_type" })?;
    if statement_type != STATEMENT_TYPE {
        return Err(StatementError::WrongType {
            found: statement_type,
        });
    }
    let predicate_type = read.predicate_type.ok_or(StatementError::Missing {
        field: "predicateType",
    })?;
    if read.subject.is_empty() {
        return Err(StatementError::NoSubject);
    }
    let builder_id = read
        .predicate
        .and_then(|p| p.run_details)
        .and_then(|r| r.builder)
        .and_then(|b| b.id);
    Ok(Statement {
        statement_type,
        predicate_type,
        subjects: read.subject,
        builder_id,
    })
}

#[derive(serde::Deserialize)]
struct StatementIn {
    #[serde(rename = "_type")]
    type_: Option<String>,
    #[serde(default)]
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: Option<String>,
    predicate: Option<PredicateIn>,
}

#[derive(serde::Deserialize)]
struct PredicateIn {
    #[serde(rename = "runDetails")]
    run_details: Option<RunDetailsIn>,
}

#[derive(serde::Deserialize)]
struct RunDetailsIn {
    builder: Option<BuilderIn>,
}

#[derive(serde::Deserialize)]
struct BuilderIn {
    id: Option<String>,
}

#[cfg(test)]
#[path = "intoto_tests.rs"]
mod tests;
