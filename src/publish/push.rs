//! The registry half of a publish: an exported image's layers compressed and
//! pushed with its config and manifest, then the tags pointed at that
//! manifest (one platform) or at an index of exactly the platforms built.
//! Public step by step, so a benchmark can time the push alone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use super::error::PublishError;
use crate::docker::{compress_layer, CompressedLayer, ExportedImage};
use crate::registry::assemble::{image_manifest, index, Format, IndexEntry};
use crate::registry::push::Pusher;
use crate::registry::{BlobPush, Platform, Reference, RegistryClient, RegistryError};

/// Layers pushed at once. Registries take parallel uploads well; more than a
/// few only splits the same uplink.
pub(super) const PARALLEL_UPLOADS: usize = 3;

/// Layers compressed at once: one per core, as gzip is CPU-bound.
pub(super) fn parallel_compressions() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

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
    pub stats: PushStats,
}

/// What a platform push had to do, for logs, tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushStats {
    /// The image was never exported: the layer cache and the registry had
    /// everything (see [`super::push_cached`]).
    pub export_skipped: bool,
    pub layers_compressed: usize,
    pub layers_uploaded: usize,
    /// Already in the target repository.
    pub layers_existed: usize,
    /// Linked from another repository of the same registry.
    pub layers_mounted: usize,
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

/// Gzips every layer beside its tar, one per core at a time, off the async
/// threads. Deterministic: each layer is compressed alone with a fixed level
/// and header, so the result depends neither on the order nor on the overlap.
pub async fn compress_exported(
    exported: &ExportedImage,
) -> Result<Vec<CompressedLayer>, PublishError> {
    let platform = exported_platform(exported).to_string();
    let paths: Vec<PathBuf> = exported.layers.iter().map(|l| l.path.clone()).collect();
    // `buffered` starts a job only when a slot frees up, so no more than
    // `parallel_compressions()` run at once, and yields results in layer order.
    futures::stream::iter(paths)
        .map(|path| {
            let platform = platform.clone();
            async move {
                tokio::task::spawn_blocking(move || compress_layer(&path))
                    .await
                    .map_err(|e| PublishError::Scratch {
                        detail: format!("layer compression stopped: {e}"),
                    })?
                    .map_err(|source| PublishError::Compress { platform, source })
            }
        })
        .buffered(parallel_compressions())
        .try_collect()
        .await
}

/// Pushes the layers the repository lacks, the config and the image
/// manifest (by digest), for one exported platform image whose layers
/// [`compress_exported`] made. [`super::push_layers`] does the same with
/// compression and upload overlapping, and with the layer cache.
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
    // NOTE: the futures are collected first; a closure inside the stream
    // type trips rustc's higher-ranked lifetime check for `Send` futures.
    let uploads: Vec<_> = layers
        .iter()
        .map(|layer| {
            let on_err = blob_error(&shown, format!("layer {}", layer.digest));
            let pusher = &pusher;
            async move {
                pusher
                    .push_blob_file(repo, &layer.path, &layer.digest, layer.size)
                    .await
                    .map_err(on_err)
            }
        })
        .collect();
    let outcomes: Vec<BlobPush> = futures::stream::iter(uploads)
        .buffered(PARALLEL_UPLOADS)
        .try_collect()
        .await?;
    let existed = outcomes.iter().filter(|o| **o == BlobPush::Existed).count();
    let stats = PushStats {
        layers_compressed: layers.len(),
        layers_uploaded: outcomes.len() - existed,
        layers_existed: existed,
        ..PushStats::default()
    };
    let blobs: Vec<(&str, u64)> = layers.iter().map(|l| (l.digest.as_str(), l.size)).collect();
    push_config_and_manifest(
        &pusher,
        repo,
        platform,
        &exported.config_bytes,
        &blobs,
        format,
        stats,
    )
    .await
}

/// The last part of every platform push, once each layer blob is in `repo`:
/// the config blob, then the image manifest by digest. `stats` is passed
/// through into the result.
pub async fn push_config_and_manifest(
    pusher: &Pusher<'_>,
    repo: &Reference,
    platform: Platform,
    config_bytes: &[u8],
    blobs: &[(&str, u64)],
    format: Format,
    stats: PushStats,
) -> Result<PushedManifest, PublishError> {
    let shown = platform.to_string();
    let config_digest = pusher
        .push_blob_bytes(repo, config_bytes)
        .await
        .map_err(blob_error(&shown, "the image config".into()))?;
    let manifest = image_manifest(format, (&config_digest, config_bytes.len() as u64), blobs);
    pusher
        .push_manifest(repo, &manifest.digest, &manifest.bytes, manifest.media_type)
        .await
        .map_err(|source| PublishError::PushManifest {
            platform: shown,
            source,
        })?;
    Ok(PushedManifest {
        platform,
        digest: manifest.digest,
        media_type: manifest.media_type,
        size: manifest.bytes.len() as u64,
        bytes: manifest.bytes,
        config_digest,
        stats,
    })
}

pub(super) fn blob_error(
    platform: &str,
    what: String,
) -> impl FnOnce(RegistryError) -> PublishError {
    let platform = platform.to_string();
    move |source| PublishError::PushBlob {
        platform,
        what,
        source,
    }
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

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
