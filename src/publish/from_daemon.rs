//! One built image from the daemon into the registry, by digest. First the
//! cheap way: if the layer cache knows every layer's blob, the repository
//! has them all (or can mount them) and the cache holds the config, only
//! the config and manifest are sent and the image is never exported or
//! compressed. Otherwise stream it out of the daemon ([`super::stream`]),
//! still skipping the compression of layers whose blob the repository has.

use serde::Deserialize;

use super::cache::BlobCache;
use super::error::PublishError;
use super::layers::{find_in_repo, Arrived};
use super::push::{push_config_and_manifest, PushStats, PushedManifest};
use crate::oci::{Digest, Platform, Reference};
use crate::registry::assemble::Format;
use crate::registry::Pusher;

/// Pushes `image` (a local tag or ID) for `platform` to `repo`, the cached
/// way when it can.
#[allow(clippy::too_many_arguments)]
pub async fn push_built(
    docker: &bollard::Docker,
    pusher: &Pusher<'_>,
    repo: &Reference,
    image: &str,
    platform: &Platform,
    format: Format,
    cache: &BlobCache,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<PushedManifest, PublishError> {
    if let Some(pushed) = push_cached(docker, pusher, repo, image, platform, format, cache).await? {
        return Ok(pushed);
    }
    super::stream::push_streamed(docker, pusher, repo, image, platform, format, cache, cancel).await
}

/// The config fields the cached path needs; the bytes themselves are
/// verified against the image ID before this is read.
#[derive(Deserialize)]
struct ConfigFields {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    variant: Option<String>,
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// The cached path: `Ok(None)` on any miss, so the caller exports instead.
/// Registry failures while checking are errors, as they would be on upload.
pub async fn push_cached(
    docker: &bollard::Docker,
    pusher: &Pusher<'_>,
    repo: &Reference,
    image: &str,
    platform: &Platform,
    format: Format,
    cache: &BlobCache,
) -> Result<Option<PushedManifest>, PublishError> {
    // GOTCHA: with the containerd image store the daemon's Id is the
    // manifest digest, not the config's; `cache.config` then finds nothing
    // whose sha256 is that Id, and we take the export path. Safe, just slower.
    let id = match docker.inspect_image(image).await {
        Ok(inspect) => inspect.id.unwrap_or_default(),
        Err(e) => {
            tracing::debug!(image, error = %e, "inspect failed; exporting instead");
            return Ok(None);
        }
    };
    let Some(config_bytes) = cache.config(&id) else {
        return Ok(None);
    };
    let Ok(config) = serde_json::from_slice::<ConfigFields>(&config_bytes) else {
        return Ok(None);
    };
    let variant = config.variant.as_deref().filter(|v| !v.is_empty());
    let actual = Platform::new(&config.os, &config.architecture, variant);
    if !platform.matches(&actual) {
        // The export path says what is wrong, in detail.
        return Ok(None);
    }
    let shown = actual.to_string();
    let mut blobs = Vec::with_capacity(config.rootfs.diff_ids.len());
    let mut stats = PushStats {
        export_skipped: true,
        ..PushStats::default()
    };
    for diff_id in &config.rootfs.diff_ids {
        let Some(known) = cache.layer(diff_id) else {
            return Ok(None);
        };
        match find_in_repo(pusher, repo, &known, &shown).await? {
            Some(Arrived::Mounted) => stats.layers_mounted += 1,
            Some(_) => stats.layers_existed += 1,
            None => return Ok(None),
        }
        blobs.push((diff_id, known));
    }
    let target = repo.repository_reference();
    for (diff_id, known) in &blobs {
        cache.record_layer(diff_id, &known.digest, known.size, None, Some(&target));
    }
    let blobs: Vec<(Digest, u64)> = blobs
        .iter()
        .map(|(_, known)| (known.digest.clone(), known.size))
        .collect();
    let pushed =
        push_config_and_manifest(pusher, repo, actual, &config_bytes, &blobs, format, stats)
            .await?;
    Ok(Some(pushed))
}
