//! An exported image's layers into the target repository, each on its own
//! path: a layer whose blob the cache knows and the repository holds (or can
//! mount) is neither compressed nor sent; any other is compressed and then
//! uploaded at once, so compression of the next layers overlaps the upload
//! of this one instead of all compression waiting ahead of all uploads.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use super::cache::{BlobCache, CachedLayer};
use super::error::PublishError;
use super::push::{blob_error, parallel_compressions, PushStats, PARALLEL_UPLOADS};
use crate::docker::{compress_layer, ExportError, ExportedImage, ExportedLayer};
use crate::registry::{BlobPush, Pusher, Reference};

/// A layer blob now in the target repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: String,
    pub size: u64,
    pub how: Arrived,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrived {
    /// Compressed here and uploaded.
    Uploaded,
    /// Compressed here, then the repository turned out to have it.
    CompressedButExisted,
    /// Known from the cache and already in the repository.
    Existed,
    /// Known from the cache and mounted from another repository.
    Mounted,
}

/// Puts every layer of `exported` into `repo`, in layer order, recording
/// what it learns in `cache`. The `.tar.gz` files are deleted once sent.
pub async fn push_layers(
    pusher: &Pusher<'_>,
    repo: &Reference,
    exported: &ExportedImage,
    cache: &BlobCache,
) -> Result<(Vec<LayerBlob>, PushStats), PublishError> {
    let platform = super::push::exported_platform(exported).to_string();
    let slots = Slots {
        compress: Arc::new(Semaphore::new(parallel_compressions())),
        upload: Semaphore::new(PARALLEL_UPLOADS),
    };
    // NOTE: the futures are collected first; a closure inside the stream
    // type trips rustc's higher-ranked lifetime check for `Send` futures.
    let jobs: Vec<_> = exported
        .layers
        .iter()
        .enumerate()
        .map(|(index, layer)| one_layer(pusher, repo, (index, layer), cache, &slots, &platform))
        .collect();
    // Every layer in flight at once; the semaphores do the bounding, and
    // `buffered` keeps the results in layer order for the manifest.
    let blobs: Vec<LayerBlob> = futures::stream::iter(jobs)
        .buffered(exported.layers.len().max(1))
        .try_collect()
        .await?;
    let count = |how: &[Arrived]| blobs.iter().filter(|b| how.contains(&b.how)).count();
    let stats = PushStats {
        export_skipped: false,
        layers_compressed: count(&[Arrived::Uploaded, Arrived::CompressedButExisted]),
        layers_uploaded: count(&[Arrived::Uploaded]),
        layers_existed: count(&[Arrived::Existed, Arrived::CompressedButExisted]),
        layers_mounted: count(&[Arrived::Mounted]),
    };
    Ok((blobs, stats))
}

struct Slots {
    compress: Arc<Semaphore>,
    upload: Semaphore,
}

async fn one_layer(
    pusher: &Pusher<'_>,
    repo: &Reference,
    (index, layer): (usize, &ExportedLayer),
    cache: &BlobCache,
    slots: &Slots,
    platform: &str,
) -> Result<LayerBlob, PublishError> {
    let target = repo.repository_reference();
    if let Some(known) = cache.layer(&layer.diff_id) {
        if let Some(how) = find_in_repo(pusher, repo, &known, platform).await? {
            cache.record_layer(&layer.diff_id, &known.digest, known.size, Some(&target));
            return Ok(LayerBlob {
                digest: known.digest,
                size: known.size,
                how,
            });
        }
    }
    let compressed = {
        let _slot = slots.compress.clone().acquire_owned().await;
        let path = layer.path.clone();
        tokio::task::spawn_blocking(move || compress_layer(&path))
            .await
            .map_err(|e| PublishError::Scratch {
                detail: format!("layer compression stopped: {e}"),
            })?
            .map_err(|source| PublishError::Compress {
                platform: platform.to_string(),
                source,
            })?
    };
    // The export checked this file against the config; a difference now
    // means it changed underneath us, and the cache must not learn from it.
    if compressed.diff_id != layer.diff_id {
        return Err(PublishError::Compress {
            platform: platform.to_string(),
            source: ExportError::DiffIdMismatch {
                index,
                path: layer.path.clone(),
                expected: layer.diff_id.clone(),
                actual: compressed.diff_id,
            },
        });
    }
    cache.record_layer(&layer.diff_id, &compressed.digest, compressed.size, None);
    let pushed = {
        let _slot = slots.upload.acquire().await;
        pusher
            .push_blob_file(repo, &compressed.path, &compressed.digest, compressed.size)
            .await
            .map_err(blob_error(platform, format!("layer {}", compressed.digest)))?
    };
    cache.record_layer(
        &layer.diff_id,
        &compressed.digest,
        compressed.size,
        Some(&target),
    );
    // Scratch space: the blob is in the registry now.
    let _ = std::fs::remove_file(&compressed.path);
    Ok(LayerBlob {
        digest: compressed.digest,
        size: compressed.size,
        how: match pushed {
            BlobPush::Uploaded => Arrived::Uploaded,
            BlobPush::Existed => Arrived::CompressedButExisted,
        },
    })
}

/// Whether `repo` has the cached blob, or can mount it from a repository of
/// the same registry we pushed it to before. `None`: it must be uploaded.
pub(super) async fn find_in_repo(
    pusher: &Pusher<'_>,
    repo: &Reference,
    known: &CachedLayer,
    platform: &str,
) -> Result<Option<Arrived>, PublishError> {
    let on_err = blob_error(platform, format!("layer {}", known.digest));
    if pusher
        .blob_exists(repo, &known.digest)
        .await
        .map_err(on_err)?
    {
        return Ok(Some(Arrived::Existed));
    }
    let prefix = format!("{}/", repo.registry);
    for source in &known.repositories {
        let Some(from) = source.strip_prefix(&prefix) else {
            continue;
        };
        if from == repo.repository {
            continue;
        }
        // A declined mount (no access, blob gone since) is not an error:
        // try the next source, and in the end upload.
        match pusher.mount_blob(repo, &known.digest, from).await {
            Ok(true) => return Ok(Some(Arrived::Mounted)),
            Ok(false) => {}
            Err(e) => tracing::debug!(from, error = %e, "cross-repository mount failed"),
        }
    }
    Ok(None)
}
