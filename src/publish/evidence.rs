//! Supply-chain evidence beside the image, never inside it: after the tags
//! are verified, each platform manifest gets an SLSA v1 provenance statement
//! (signed as a DSSE envelope when there is a key) and each attached file
//! becomes an artifact, all pushed as OCI 1.1 referrers of what they are
//! about (see [`crate::registry::referrers`]). The tags' index and manifests
//! are the bytes a build without evidence pushes, so runtimes that choke on
//! attestation entries never see one.
//!
//! The statement is written from what this publish knows: the inputs, the
//! context hash, the platform, the base images the build log shows BuildKit
//! resolved (`FROM <ref>@sha256:…`), the builder, the times. Secret ids go
//! in; their values never reach this module.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;

use super::push::{absent_before, PushedManifest, Tagged};
use super::{PublishError, PublishRequest};
use crate::oci::document::{Descriptor, MediaType};
use crate::oci::dsse::SigningKey;
use crate::oci::intoto::{self, BaseImage, ProvenanceFacts};
use crate::oci::media_types::OCI_MANIFEST;
use crate::oci::{Digest, Reference};
use crate::registry::assemble::{artifact_manifest, ArtifactLayer, EMPTY_CONFIG};
use crate::registry::referrers::Listing;
use crate::registry::{Pusher, RegistryError};

/// What evidence a publish pushes.
#[derive(Debug, Clone, Default)]
pub struct EvidenceRequest {
    pub provenance: bool,
    /// Signs the provenance; the key stays in memory, never in a message.
    pub signing_key: Option<Arc<SigningKey>>,
    pub attachments: Vec<Attachment>,
    /// The build's `context_hash`, as the statement names the context.
    pub context_hash: String,
}

/// A file pushed as a referrer of what the tags point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub artifact_type: String,
    pub file: PathBuf,
    pub annotations: BTreeMap<String, String>,
}

/// What a publish pushed as evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Platform (as requested) → its provenance referrer.
    pub provenance_digests: BTreeMap<String, Digest>,
    pub referrers: Vec<PushedEvidence>,
}

/// One referrer pushed, and where it is listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushedEvidence {
    pub digest: Digest,
    pub subject: Digest,
    /// Listed in the subject's `sha256-<hex>` index (no referrers API).
    pub in_fallback_index: bool,
    /// The repository did not hold it before: destroy may delete it.
    pub created: bool,
}

/// Why evidence could not be pushed.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("reading {path}: {detail}")]
    File { path: String, detail: String },
    #[error("writing the provenance statement: {0}")]
    Statement(#[from] intoto::ProvenanceError),
    #[error("signing the provenance: {0}")]
    Sign(#[from] crate::oci::keys::SignError),
    #[error("{0}")]
    Registry(#[from] RegistryError),
}

/// The base images one platform's build resolved, from its log lines.
#[derive(Debug, Clone, Default)]
pub(super) struct BaseImages {
    /// Platform prefix (`[linux/arm64] `, or empty for all) → images.
    seen: BTreeMap<String, BTreeMap<String, String>>,
}

impl BaseImages {
    /// Notes `FROM <reference>@sha256:<hex>` in a build log line.
    pub fn note(&mut self, line: &str) {
        let prefix = line
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] "))
            .map(|(platform, _)| platform.to_string())
            .unwrap_or_default();
        let Some((_, after)) = line.split_once("FROM ") else {
            return;
        };
        let Some(token) = after.split_whitespace().next() else {
            return;
        };
        let Some((uri, digest)) = token.split_once('@') else {
            return;
        };
        if Digest::parse(digest).is_ok_and(|d| d.starts_with("sha256:")) {
            let images = self.seen.entry(prefix).or_default();
            images.insert(uri.to_string(), digest.to_string());
        }
    }

    fn of(&self, platform: &str) -> Vec<BaseImage> {
        let mut all: BTreeMap<&String, &String> = BTreeMap::new();
        for key in ["", platform] {
            all.extend(self.seen.get(key).into_iter().flatten());
        }
        all.into_iter()
            .map(|(uri, digest)| BaseImage {
                uri: uri.clone(),
                digest: digest.clone(),
            })
            .collect()
    }
}

/// What the statement says beyond the request.
pub(super) struct Run<'a> {
    pub req: &'a PublishRequest,
    pub repo: &'a Reference,
    pub evidence: &'a EvidenceRequest,
    /// Platform (as requested) → builder name.
    pub builders: &'a BTreeMap<String, String>,
    pub bases: &'a BaseImages,
    pub invocation_id: &'a str,
    pub started: OffsetDateTime,
}

/// Pushes the provenance of each of `manifests` (in the order of
/// `requested`) and every attachment as a referrer of `tagged`; the empty
/// config they all name goes first.
pub(super) async fn push_evidence(
    pusher: &Pusher<'_>,
    run: &Run<'_>,
    requested: &[String],
    manifests: &[PushedManifest],
    tagged: &Tagged,
) -> Result<Evidence, PublishError> {
    let failed =
        |what: String| move |source: EvidenceError| PublishError::Evidence { what, source };
    // The config every artifact names, pushed once for all of them.
    pusher
        .push_blob_bytes(run.repo, EMPTY_CONFIG)
        .await
        .map_err(|e| failed("the artifacts' empty config".into())(e.into()))?;
    let mut evidence = Evidence::default();
    if run.evidence.provenance {
        for (platform, manifest) in requested.iter().zip(manifests) {
            let what = format!("the {platform} provenance");
            let pushed = provenance(pusher, run, platform, manifest)
                .await
                .map_err(failed(what))?;
            evidence
                .provenance_digests
                .insert(platform.clone(), pushed.digest.clone());
            evidence.referrers.push(pushed);
        }
    }
    let subject = subject(&tagged.digest, tagged.media_type, tagged.size);
    for attachment in &run.evidence.attachments {
        let what = format!("attachment {}", attachment.file.display());
        let pushed = attach(pusher, run.repo, attachment, &subject)
            .await
            .map_err(failed(what))?;
        evidence.referrers.push(pushed);
    }
    Ok(evidence)
}

async fn provenance(
    pusher: &Pusher<'_>,
    run: &Run<'_>,
    platform: &str,
    manifest: &PushedManifest,
) -> Result<PushedEvidence, EvidenceError> {
    let req = run.req;
    let builder = run.builders.get(platform).map_or("default", String::as_str);
    let facts = ProvenanceFacts {
        subject_name: run.repo.repository_reference(),
        subject_digest: manifest.digest.to_string(),
        dockerfile: req.dockerfile.display().to_string(),
        target: req.target.clone(),
        platform: platform.to_string(),
        build_args: req.build_args.clone(),
        labels: req.labels.clone(),
        context_hash: run.evidence.context_hash.clone(),
        secret_ids: req.secrets.keys().cloned().collect(),
        base_images: run.bases.of(platform),
        builder_id: builder_id(builder),
        builder_version: [(
            "stevedore".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]
        .into(),
        invocation_id: run.invocation_id.to_string(),
        started_on: run.started,
        finished_on: OffsetDateTime::now_utc(),
    };
    let statement = intoto::statement(&facts)?;
    let (media_type, content) = match &run.evidence.signing_key {
        Some(key) => {
            let envelope = key.sign_envelope(intoto::PAYLOAD_TYPE, statement)?;
            (intoto::DSSE_MEDIA_TYPE, envelope.to_json())
        }
        None => (intoto::PAYLOAD_TYPE, statement),
    };
    let predicate: BTreeMap<String, String> = [(
        intoto::PREDICATE_TYPE_ANNOTATION.to_string(),
        intoto::SLSA_PROVENANCE_V1.to_string(),
    )]
    .into();
    let subject = subject(&manifest.digest, manifest.media_type, manifest.size);
    let artifact = Artifact {
        artifact_type: intoto::PAYLOAD_TYPE,
        layer_media_type: media_type,
        content: &content,
        layer_annotations: &predicate,
        annotations: &predicate,
    };
    artifact.push(pusher, run.repo, &subject).await
}

async fn attach(
    pusher: &Pusher<'_>,
    repo: &Reference,
    attachment: &Attachment,
    subject: &Descriptor,
) -> Result<PushedEvidence, EvidenceError> {
    let content = tokio::fs::read(&attachment.file)
        .await
        .map_err(|e| EvidenceError::File {
            path: attachment.file.display().to_string(),
            detail: e.to_string(),
        })?;
    let title = attachment
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let layer_annotations: BTreeMap<String, String> =
        [("org.opencontainers.image.title".to_string(), title)].into();
    let artifact = Artifact {
        artifact_type: &attachment.artifact_type,
        layer_media_type: &attachment.artifact_type,
        content: &content,
        layer_annotations: &layer_annotations,
        annotations: &attachment.annotations,
    };
    artifact.push(pusher, repo, subject).await
}

/// One artifact manifest and its one layer.
struct Artifact<'a> {
    artifact_type: &'a str,
    layer_media_type: &'a str,
    content: &'a [u8],
    layer_annotations: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
}

impl Artifact<'_> {
    async fn push(
        &self,
        pusher: &Pusher<'_>,
        repo: &Reference,
        subject: &Descriptor,
    ) -> Result<PushedEvidence, EvidenceError> {
        let digest = pusher.push_blob_bytes(repo, self.content).await?;
        let layer = ArtifactLayer {
            media_type: self.layer_media_type.to_string(),
            digest,
            size: self.content.len() as u64,
            annotations: self.layer_annotations.clone(),
        };
        let manifest = artifact_manifest(self.artifact_type, &layer, subject, self.annotations);
        let mut entry = Descriptor::new(
            MediaType::from(OCI_MANIFEST),
            manifest.bytes.len() as u64,
            manifest.digest.to_oci(),
        );
        entry.set_artifact_type(Some(MediaType::from(self.artifact_type)));
        if !self.annotations.is_empty() {
            entry.set_annotations(Some(self.annotations.clone().into_iter().collect()));
        }
        let created = absent_before(pusher, repo, &manifest.digest).await;
        let subject_digest = Digest::from(subject.digest());
        let pushed = pusher
            .push_referrer(repo, &manifest, &subject_digest, &entry)
            .await?;
        Ok(PushedEvidence {
            digest: pushed.digest,
            subject: subject_digest,
            in_fallback_index: pushed.listing == Listing::Tag,
            created,
        })
    }
}

fn subject(digest: &Digest, media_type: &str, size: u64) -> Descriptor {
    Descriptor::new(MediaType::from(media_type), size, digest.to_oci())
}

/// stevedore's version and the builder that built, as `runDetails.builder.id`.
pub fn builder_id(builder: &str) -> String {
    format!(
        "https://github.com/stevedore/terraform-provider-stevedore@{}#builder={builder}",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_come_from_resolved_from_lines() {
        let hex = "ab".repeat(32);
        let mut bases = BaseImages::default();
        bases.note(&format!(
            "#4 [1/2] FROM docker.io/library/alpine:3.19@sha256:{hex}"
        ));
        bases.note(&format!(
            "[linux/arm64] #5 FROM 127.0.0.1:5000/base:1@sha256:{hex}"
        ));
        bases.note("#6 [2/2] COPY . /");
        bases.note("#7 FROM scratch");
        bases.note("#8 FROM x@sha256:short");
        let amd = bases.of("linux/amd64");
        assert_eq!(amd.len(), 1);
        assert_eq!(amd[0].uri, "docker.io/library/alpine:3.19");
        assert_eq!(amd[0].digest, format!("sha256:{hex}"));
        assert_eq!(bases.of("linux/arm64").len(), 2);
    }

    #[test]
    fn the_builder_id_names_version_and_builder() {
        let id = builder_id("arm");
        assert!(id.starts_with("https://github.com/stevedore/terraform-provider-stevedore@"));
        assert!(id.ends_with("#builder=arm"));
    }
}
