//! The registry half of a publish: an exported image's layers compressed and
//! pushed with its config and manifest, then the tags pointed at that
//! manifest (one platform) or at an index of exactly the platforms built.
//! Public step by step, so a benchmark can time the push alone.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use super::error::PublishError;
use crate::docker::{compress_layer, CompressedLayer, ExportedImage};
use crate::registry::assemble::{image_manifest, index, Format, IndexEntry};
use crate::registry::{BlobPush, Platform, Reference, RegistryClient};

/// Layers pushed at once. Registries take parallel uploads well; more than a
/// few only splits the same uplink.
const PARALLEL_UPLOADS: usize = 3;

/// One platform's manifest, pushed by digest (no tag yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    pub platform: Platform,
    pub digest: String,
    pub media_type: &'static str,
    pub size: u64,
    /// The manifest exactly as pushed; tags get these same bytes.
    pub bytes: Vec<u8>,
    /// The config digest: the image ID.
    pub config_digest: String,
    pub layers_uploaded: usize,
    pub layers_existed: usize,
}

/// What the tags now point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub digest: String,
    pub media_type: &'static str,
}

/// The platform an exported image's config states.
pub fn exported_platform(exported: &ExportedImage) -> Platform {
    Platform::new(
        &exported.os,
        &exported.architecture,
        exported.variant.as_deref(),
    )
}

/// Gzips every layer beside its tar (streamed, deterministic: the same tar
/// always gives the same blob digest), off the async threads.
pub async fn compress_exported(
    exported: &ExportedImage,
) -> Result<Vec<CompressedLayer>, PublishError> {
    let platform = exported_platform(exported).to_string();
    let paths: Vec<_> = exported.layers.iter().map(|l| l.path.clone()).collect();
    let compressed = tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|p| compress_layer(p))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| PublishError::Scratch {
        detail: format!("layer compression stopped: {e}"),
    })?;
    compressed.map_err(|source| PublishError::Compress { platform, source })
}

/// Pushes the layers the repository lacks, the config and the image
/// manifest (by digest), for one exported platform image.
pub async fn push_exported(
    registry: &RegistryClient,
    repo: &Reference,
    exported: &ExportedImage,
    layers: &[CompressedLayer],
    format: Format,
    cancel: CancellationToken,
) -> Result<PushedManifest, PublishError> {
    let platform = exported_platform(exported);
    let shown = platform.to_string();
    let pusher = registry.pusher(cancel);
    let blob_error = |what: String| {
        let platform = shown.clone();
        move |source| PublishError::PushBlob {
            platform,
            what,
            source,
        }
    };
    let outcomes: Vec<BlobPush> = futures::stream::iter(layers.iter().map(|layer| {
        let pusher = &pusher;
        let on_err = blob_error(format!("layer {}", layer.digest));
        async move {
            pusher
                .push_blob_file(repo, &layer.path, &layer.digest, layer.size)
                .await
                .map_err(on_err)
        }
    }))
    .buffered(PARALLEL_UPLOADS)
    .try_collect()
    .await?;
    let config_digest = pusher
        .push_blob_bytes(repo, &exported.config_bytes)
        .await
        .map_err(blob_error("the image config".into()))?;
    let blobs: Vec<(&str, u64)> = layers.iter().map(|l| (l.digest.as_str(), l.size)).collect();
    let manifest = image_manifest(
        format,
        (&config_digest, exported.config_bytes.len() as u64),
        &blobs,
    );
    pusher
        .push_manifest(repo, &manifest.digest, &manifest.bytes, manifest.media_type)
        .await
        .map_err(|source| PublishError::PushManifest {
            platform: shown.clone(),
            source,
        })?;
    let existed = outcomes.iter().filter(|o| **o == BlobPush::Existed).count();
    Ok(PushedManifest {
        platform,
        digest: manifest.digest,
        media_type: manifest.media_type,
        size: manifest.bytes.len() as u64,
        bytes: manifest.bytes,
        config_digest,
        layers_uploaded: outcomes.len() - existed,
        layers_existed: existed,
    })
}

/// Points every tag at the one manifest, or for several platforms at an
/// index (OCI) / manifest list (Docker) listing exactly those manifests, in
/// the order given. Nothing else goes in: no attestation entries.
pub async fn push_tags(
    registry: &RegistryClient,
    repo: &Reference,
    manifests: &[PushedManifest],
    tags: &[String],
    format: Format,
    cancel: CancellationToken,
) -> Result<Tagged, PublishError> {
    let pusher = registry.pusher(cancel);
    let (bytes, media_type, digest) = match manifests {
        [only] => (only.bytes.clone(), only.media_type, only.digest.clone()),
        _ => {
            let entries: Vec<IndexEntry> = manifests
                .iter()
                .map(|m| IndexEntry {
                    digest: m.digest.clone(),
                    size: m.size,
                    media_type: m.media_type.to_string(),
                    platform: m.platform.clone(),
                })
                .collect();
            let list = index(format, &entries);
            (list.bytes, list.media_type, list.digest)
        }
    };
    for tag in tags {
        pusher
            .push_manifest(repo, tag, &bytes, media_type)
            .await
            .map_err(|source| PublishError::Tag {
                tag: tag.clone(),
                source,
            })?;
    }
    Ok(Tagged { digest, media_type })
}

/// What each tag points at now: `Some(digest)`, or `None` when the tag or the
/// whole repository is missing. Any other registry failure is an error, so a
/// caller can tell "gone" from "could not look".
pub async fn resolve_tags(
    registry: &RegistryClient,
    repo: &Reference,
    tags: &[String],
) -> Result<BTreeMap<String, Option<String>>, crate::registry::RegistryError> {
    let mut out = BTreeMap::new();
    for tag in tags {
        let mut tagged = repo.clone();
        tagged.tag = Some(tag.clone());
        tagged.digest = None;
        let digest = match registry.get_manifest(&tagged).await {
            Ok(fetched) => Some(fetched.digest),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        out.insert(tag.clone(), digest);
    }
    Ok(out)
}

/// Deletes the manifests `digests` name from `repo`, which removes every
/// tag pointing at them. Stops at the first registry that says it cannot
/// delete (`Deleted::Unsupported`), which the caller should report, not fail on.
pub async fn delete_manifests(
    registry: &RegistryClient,
    repo: &Reference,
    digests: &[String],
    cancel: CancellationToken,
) -> Result<crate::registry::push::Deleted, crate::registry::RegistryError> {
    use crate::registry::push::Deleted;
    let pusher = registry.pusher(cancel);
    let mut outcome = Deleted::Absent;
    for digest in digests {
        match pusher.delete_manifest(repo, digest).await? {
            unsupported @ Deleted::Unsupported { .. } => return Ok(unsupported),
            Deleted::Deleted => outcome = Deleted::Deleted,
            Deleted::Absent => {}
        }
    }
    Ok(outcome)
}
