//! `provenance`, `signing_key_file` and `attach` of `stevedore_image_build`:
//! their schema, their checks (naming the attribute at fault), what of them
//! goes into `context_hash` (the flag, the key's public id, each attached
//! file's content, type and annotations; never the private key), and the
//! publish's [`EvidenceRequest`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{attr, BuildModel};
use crate::diag::{Diagnostic, Diagnostics};
use crate::oci::dsse::SigningKey;
use crate::oci::keys::KeyError;
use crate::oci::Digest;
use crate::publish::{Attachment, EvidenceRequest};
use crate::schema::{Attribute, Block, NestedBlock, Nesting};
use crate::value::{AttrPath, Type, Value};

crate::model! {
    /// One `attach` block.
    pub struct AttachModel, names attach_attr {
        artifact_type,
        file,
        annotations,
    }
}

pub(super) fn attach_block() -> NestedBlock {
    let block = Block::new(
        "A file pushed as an OCI 1.1 referrer of what the tags point to (an SBOM from syft or \
         trivy, a scan report): an artifact manifest of `artifact_type` whose one layer is the \
         file. The tags' manifests do not change. Repeatable.",
    )
    .attr(Attribute::required(
        attach_attr::artifact_type,
        Type::String,
        "The artifact's media type, e.g. `application/spdx+json` or \
         `application/vnd.cyclonedx+json`.",
    ))
    .attr(Attribute::required(
        attach_attr::file,
        Type::String,
        "The file to push. Its content is a build input: a change pushes again.",
    ))
    .attr(Attribute::optional(
        attach_attr::annotations,
        Type::map(Type::String),
        "Annotations of the artifact manifest; the referrers list shows them.",
    ));
    NestedBlock::new(attr::attach, Nesting::List, block)
}

pub(super) fn attributes() -> [Attribute; 3] {
    [
        Attribute::optional_computed(
            attr::provenance,
            Type::Bool,
            "Push an SLSA v1 provenance statement (in-toto Statement v1) for each platform \
             manifest as an OCI 1.1 referrer of it, through the registry's referrers API or else \
             the `sha256-<hex>` referrers tag. The tags' index and manifests stay exactly as \
             without it. Default `false`.",
        ),
        Attribute::optional(
            attr::signing_key_file,
            Type::String,
            "A PKCS#8 PEM private key (ECDSA P-256 or Ed25519) that signs the provenance as a \
             DSSE envelope. The key never enters plan, state or logs; its public key is a build \
             input.",
        ),
        Attribute::computed(
            attr::provenance_digests,
            Type::map(Type::String),
            "Platform → the digest of its provenance referrer; empty unless `provenance`.",
        ),
    ]
}

/// Why `signing_key_file` cannot sign.
#[derive(Debug, thiserror::Error)]
enum KeyFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key { path: String, source: KeyError },
}

/// Reads and parses `signing_key_file`.
fn signing_key(path: &str) -> Result<SigningKey, KeyFileError> {
    let pem = std::fs::read(path).map_err(|source| KeyFileError::Read {
        path: path.to_string(),
        source,
    })?;
    SigningKey::from_pem(&pem).map_err(|source| KeyFileError::Key {
        path: path.to_string(),
        source,
    })
}

/// The checks of these attributes; unknown values are skipped.
pub(super) fn validate(config: &Value, d: &mut Diagnostics) {
    let m = BuildModel::from_value(config);
    if let Some(path) = m.signing_key_file.as_str() {
        if let Err(why) = signing_key(path) {
            d.push(Diagnostic::attr_error(
                attr::signing_key_file,
                "Invalid Signing Key",
                format!(
                    "signing_key_file: {why}. Give a PKCS#8 PEM private key, ECDSA P-256 or \
                     Ed25519 (`openssl genpkey -algorithm ed25519 -out key.pem`)."
                ),
            ));
        } else if m.provenance.as_bool() == Some(false) {
            d.push(
                Diagnostic::warning(
                    "Signing Key Unused",
                    "signing_key_file is set but provenance is not: nothing is signed. Set \
                     provenance = true.",
                )
                .at(AttrPath::attr(attr::signing_key_file)),
            );
        }
    }
    for (i, block) in m.attach.as_list().unwrap_or_default().iter().enumerate() {
        let a = AttachModel::from_value(block);
        let at = |name: &str| AttrPath::attr(attr::attach).then_index(i).then_attr(name);
        if let Some(file) = a.file.as_str() {
            if let Err(e) = std::fs::metadata(file).and_then(|m| {
                m.is_file()
                    .then_some(())
                    .ok_or_else(|| std::io::Error::other("not a regular file"))
            }) {
                d.push(
                    Diagnostic::error(
                        "Attachment Not Found",
                        format!("attach file {file:?}: {e}. Give a file that exists."),
                    )
                    .at(at(attach_attr::file)),
                );
            }
        }
        if let Some(kind) = a.artifact_type.as_str() {
            if !valid_media_type(kind) {
                d.push(
                    Diagnostic::error(
                        "Invalid Artifact Type",
                        format!(
                            "artifact_type {kind:?} is not a media type (type/subtype, as \
                             application/spdx+json)."
                        ),
                    )
                    .at(at(attach_attr::artifact_type)),
                );
            }
        }
    }
}

/// RFC 6838's shape: `type/subtype`, restricted-name characters.
fn valid_media_type(text: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    matches!(text.split_once('/'), Some((kind, sub)) if name(kind) && name(sub))
}

/// Adds these attributes to the `context_hash` inputs; `false` when one is
/// still unknown. Nothing is added without evidence, so the hashes of
/// states from before these attributes stay as they were.
pub(super) fn hash_inputs(planned: &Value, inputs: &mut BTreeMap<String, String>) -> bool {
    let m = BuildModel::from_value(planned);
    if ![&m.provenance, &m.signing_key_file, &m.attach]
        .iter()
        .all(|v| v.is_wholly_known())
    {
        return false;
    }
    if m.provenance.as_bool() == Some(true) {
        inputs.insert(attr::provenance.into(), "true".into());
        if let Some(Ok(key)) = m.signing_key_file.as_str().map(signing_key) {
            inputs.insert(attr::signing_key_file.into(), key.public_key().key_id());
        }
    }
    for (i, block) in m.attach.as_list().unwrap_or_default().iter().enumerate() {
        let a = AttachModel::from_value(block);
        let content = a
            .file
            .as_str()
            .and_then(|f| std::fs::read(f).ok())
            .map(|bytes| Digest::sha256_of(&bytes).to_string())
            .unwrap_or_default();
        let notes = a.annotations.to_string_map();
        let notes: Vec<String> = notes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let kind = a.artifact_type.as_str().unwrap_or_default();
        inputs.insert(
            format!("attach:{i}"),
            format!("{kind}\n{content}\n{}", notes.join("\n")),
        );
    }
    true
}

/// The publish's evidence, from a plan validate accepted.
pub(super) fn request(planned: &Value) -> Result<EvidenceRequest, Diagnostics> {
    let m = BuildModel::from_value(planned);
    let signing_key = match m.signing_key_file.as_str() {
        Some(path) => match signing_key(path) {
            Ok(key) => Some(Arc::new(key)),
            Err(why) => {
                return Err(Diagnostic::attr_error(
                    attr::signing_key_file,
                    "Invalid Signing Key",
                    format!("signing_key_file: {why}."),
                )
                .into())
            }
        },
        None => None,
    };
    let attachments = m
        .attach
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|block| {
            let a = AttachModel::from_value(block);
            Some(Attachment {
                artifact_type: a.artifact_type.as_str()?.to_string(),
                file: PathBuf::from(a.file.as_str()?),
                annotations: a.annotations.to_string_map(),
            })
        })
        .collect();
    Ok(EvidenceRequest {
        provenance: m.provenance.as_bool() == Some(true),
        signing_key,
        attachments,
        context_hash: m.context_hash.as_str().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_type_and_subtype() {
        assert!(valid_media_type("application/spdx+json"));
        assert!(valid_media_type("application/vnd.cyclonedx+json"));
        assert!(!valid_media_type("spdx"));
        assert!(!valid_media_type("application/"));
        assert!(!valid_media_type("a/b c"));
    }
}
