//! `require_provenance`: before a deployment, every manifest the tasks will
//! run must have a provenance referrer signed by the configured key, about
//! that very manifest, and (when asked) made by a builder whose id has the
//! configured prefix. Anything less refuses the apply before ECS is touched.
//!
//! The work is split in three: [`fetch_candidates`] reads the in-toto
//! referrers of a manifest from the registry (I/O only), [`decide`] judges
//! what was read (pure, so every refusal is unit-tested), and [`require`]
//! turns the outcome for each task-definition image into diagnostics.
//! When no candidate passes, the refusal reported is the one that got
//! furthest through the checks (another builder, then another subject, then
//! a bad signature, ...), since that says best what is actually wrong.

use super::verify::CheckedImage;
use super::{attr, provenance_attr, ProvenanceModel};
use crate::diag::{Diagnostic, Diagnostics};
use crate::oci::document::{Described, Manifest};
use crate::oci::dsse::{KeyError, PublicKey};
use crate::oci::intoto::{DSSE_MEDIA_TYPE, PAYLOAD_TYPE};
use crate::oci::{Digest, Reference};
use crate::registry::{RegistryClient, RegistryError};
use crate::resources::common::{registry_hint, RegistryUse};
use crate::schema::{Attribute, Block};
use crate::value::{AttrPath, Type, Value};

mod judge;

pub use judge::{decide, Candidate, Content, Policy, Reason, Refusal};

/// The largest envelope read: statements are a few KiB.
const MAX_ENVELOPE: u64 = 4 * 1024 * 1024;

const KEY_DOC: &str = "PEM public key (`-----BEGIN PUBLIC KEY-----`, ECDSA P-256 or Ed25519) \
                       whose private part signs the provenance: the public part of \
                       stevedore_image_build's `signing_key_file`, e.g. from `openssl pkey -in \
                       signing.pem -pubout -out provenance.pub`. Relative paths are relative to \
                       the directory Terraform runs in.";

const BUILDER_DOC: &str = "Required prefix of the provenance's `runDetails.builder.id`, e.g. \
                           `https://github.com/stevedore/terraform-provider-stevedore@`. Unset: \
                           any builder.";

/// The `require_provenance` block.
pub fn schema_block() -> Block {
    Block::new(
        "Deploy only images whose manifests have signed SLSA provenance: before anything \
         touches ECS, each container image of the task definition must have, for the manifest \
         of its runtime platform, a provenance referrer (an OCI 1.1 artifact of type \
         `application/vnd.in-toto+json`, as stevedore_image_build pushes with `provenance = \
         true` and `signing_key_file`) whose DSSE envelope verifies with `public_key_file` and \
         whose statement's subject is that manifest. Otherwise the apply fails naming the image \
         and what was missing. A policy, not an input: changing it alone deploys nothing, it \
         applies to the next deployment. It checks the images even with `verify_images = \
         false`.",
    )
    .attr(Attribute::required(
        provenance_attr::public_key_file,
        Type::String,
        KEY_DOC,
    ))
    .attr(Attribute::optional(
        provenance_attr::builder_id,
        Type::String,
        BUILDER_DOC,
    ))
}

/// Why `public_key_file` gives no key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path:?} cannot be read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path:?} is not a usable public key: {source}")]
    Key { path: String, source: KeyError },
}

impl KeyFileError {
    /// What to do about it.
    fn hint(&self) -> &'static str {
        match self {
            KeyFileError::Read { .. } => {
                "Check the path; a relative one is read from the directory Terraform runs in."
            }
            KeyFileError::Key {
                source: KeyError::WrongBlock { found, .. },
                ..
            } if found.contains("PRIVATE KEY") => {
                "This is a private key; give its public part instead: `openssl pkey -in \
                 KEY.pem -pubout -out provenance.pub`."
            }
            KeyFileError::Key { .. } => {
                "Give the PEM public key (`-----BEGIN PUBLIC KEY-----`) of the key that signs \
                 the provenance."
            }
        }
    }
}

/// Reads and parses the public key at `path`.
pub fn read_key(path: &str) -> Result<PublicKey, KeyFileError> {
    let pem = std::fs::read(path).map_err(|source| KeyFileError::Read {
        path: path.to_string(),
        source,
    })?;
    PublicKey::from_pem(&pem).map_err(|source| KeyFileError::Key {
        path: path.to_string(),
        source,
    })
}

fn block_path(name: &str) -> AttrPath {
    AttrPath::attr(attr::require_provenance)
        .then_index(0)
        .then_attr(name)
}

fn key_diagnostic(e: &KeyFileError) -> Diagnostic {
    Diagnostic::error(
        "Invalid Provenance Key",
        format!(
            "require_provenance.public_key_file: {}.\n\n{}",
            crate::diag::error_chain(e),
            e.hint()
        ),
    )
    .at(block_path(provenance_attr::public_key_file))
}

/// Validate: the key file (when known) must hold a usable public key, and a
/// known `builder_id` must not be empty (it would allow any builder).
pub fn validate(blocks: &Value, d: &mut Diagnostics) {
    let Some(block) = blocks.as_list().and_then(|b| b.first()) else {
        return;
    };
    let block = ProvenanceModel::from_value(block);
    if let Some(path) = block.public_key_file.as_str() {
        if let Err(e) = read_key(path) {
            d.push(key_diagnostic(&e));
        }
    }
    if block
        .builder_id
        .as_str()
        .is_some_and(|b| b.trim().is_empty())
    {
        d.push(
            Diagnostic::error(
                "Empty Builder Id",
                "require_provenance.builder_id is empty, which any builder matches; give the \
                 prefix builder ids must start with, or remove it.",
            )
            .at(block_path(provenance_attr::builder_id)),
        );
    }
}

/// The policy of a planned `require_provenance`, `None` when there is none.
pub fn policy(blocks: &Value) -> Result<Option<Policy>, Diagnostic> {
    let Some(block) = blocks.as_list().and_then(|b| b.first()) else {
        return Ok(None);
    };
    let block = ProvenanceModel::from_value(block);
    let Some(path) = block.public_key_file.as_str() else {
        return Err(Diagnostic::internal(
            "apply got a require_provenance block whose public_key_file is not known",
        ));
    };
    let key = read_key(path).map_err(|e| key_diagnostic(&e))?;
    let builder_prefix = block.builder_id.as_str().map(str::to_string);
    Ok(Some(Policy {
        key,
        builder_prefix,
    }))
}

/// Why a manifest's provenance could not be proven.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error("{0}")]
    NotProven(Refusal),
    #[error("reading its provenance failed: {0}")]
    Registry(#[from] RegistryError),
}

/// Proves the provenance of `manifest` in `repo` (a repository: its tag and
/// digest are ignored) under `policy`.
pub async fn prove_manifest(
    client: &RegistryClient,
    repo: &Reference,
    manifest: &Digest,
    policy: &Policy,
) -> Result<(), ProvenanceError> {
    let candidates = fetch_candidates(client, repo, manifest).await?;
    decide(&candidates, manifest, policy).map_err(ProvenanceError::NotProven)
}

/// The referrers of `manifest` of artifact type in-toto, each with its
/// layer read as far as the decision needs.
pub async fn fetch_candidates(
    client: &RegistryClient,
    repo: &Reference,
    manifest: &Digest,
) -> Result<Vec<Candidate>, RegistryError> {
    let listed = client.referrers(repo, manifest).await?;
    let mut candidates = Vec::new();
    for descriptor in &listed.descriptors {
        let in_toto = descriptor
            .artifact_type()
            .as_ref()
            .is_some_and(|t| t.to_string() == PAYLOAD_TYPE);
        if !in_toto {
            continue;
        }
        let digest = descriptor.content_digest();
        let content = fetch_content(client, repo, &digest).await?;
        candidates.push(Candidate { digest, content });
    }
    Ok(candidates)
}

async fn fetch_content(
    client: &RegistryClient,
    repo: &Reference,
    digest: &Digest,
) -> Result<Content, RegistryError> {
    let unreadable = |why: String| Ok(Content::Unreadable { why });
    let fetched = match client.get_manifest(&repo.with_digest(digest)).await {
        Ok(fetched) => fetched,
        Err(e) if e.is_not_found() => {
            return unreadable("it is listed, but the registry does not have it".to_string())
        }
        Err(e) => return Err(e),
    };
    let layer = match Manifest::parse(&fetched.bytes, &fetched.media_type) {
        Ok(Manifest::Image(m)) => match m.layers().as_slice() {
            [layer] => layer.clone(),
            layers => return unreadable(format!("it has {} layers, not one", layers.len())),
        },
        Ok(Manifest::Index(_)) => return unreadable("it is an index".to_string()),
        Err(e) => return unreadable(e.to_string()),
    };
    let media_type = layer.media_type_text();
    if media_type != DSSE_MEDIA_TYPE {
        return Ok(Content::Unsigned { media_type });
    }
    let json = client
        .get_blob_limited(repo, &layer.content_digest(), MAX_ENVELOPE)
        .await?;
    Ok(Content::Envelope(json))
}

/// Proves every manifest of every image; all failures are reported.
pub async fn require(
    client: &RegistryClient,
    images: &[CheckedImage],
    policy: &Policy,
) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    for image in images {
        for (repo, manifest) in &image.manifests {
            if let Err(e) = prove_manifest(client, repo, manifest, policy).await {
                diags.push(diagnostic(image, manifest, &e));
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags)
    }
}

fn diagnostic(image: &CheckedImage, manifest: &Digest, e: &ProvenanceError) -> Diagnostic {
    let (summary, hint) = match e {
        ProvenanceError::NotProven(refusal) => {
            ("Image Provenance Not Proven", refusal.reason.hint())
        }
        ProvenanceError::Registry(r) => (
            "Image Provenance Not Readable",
            registry_hint(r, RegistryUse::Read),
        ),
    };
    Diagnostic::error(
        summary,
        format!(
            "{} uses {}; its manifest {manifest}: {e}.\n\n{hint}\n\nNothing was deployed \
             (require_provenance).",
            image.context, image.image
        ),
    )
}

#[cfg(test)]
#[path = "provenance_tests.rs"]
mod tests;
