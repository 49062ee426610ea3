//! The registry half of a publish: a platform's config and manifest once
//! its layers are in the repository, then the tags pointed at that manifest
//! (one platform) or at an index of exactly the platforms built.

use tokio_util::sync::CancellationToken;

use super::error::PublishError;
use super::ledger::Ledger;
use crate::oci::{Digest, Platform, Reference};
use crate::registry::assemble::{image_manifest, index, Assembled, Format, IndexEntry};
use crate::registry::push::Pusher;
use crate::registry::{RegistryClient, RegistryError};

/// One platform's manifest, pushed by digest (no tag yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    pub platform: Platform,
    pub digest: Digest,
    pub media_type: &'static str,
    pub size: u64,
    /// The manifest exactly as pushed; tags get these same bytes.
    pub bytes: Vec<u8>,
    /// The config digest: the image ID.
    pub config_digest: Digest,
    pub stats: PushStats,
    /// The repository did not hold this manifest before the push: it is this
    /// publish's own (see [`super::Ledger`]). False when that was not known.
    pub created: bool,
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
    /// The daemon sent the layers (`docker push`); we checked its manifest.
    pub pushed_by_daemon: bool,
}

/// What the tags now point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub digest: Digest,
    pub media_type: &'static str,
    /// The size of what the tags point to, as a descriptor names it.
    pub size: u64,
}

/// The last part of every platform push, once each layer blob is in `repo`:
/// the config blob, then the image manifest by digest. `stats` is passed
/// through into the result.
pub async fn push_config_and_manifest(
    pusher: &Pusher<'_>,
    repo: &Reference,
    platform: Platform,
    config_bytes: &[u8],
    blobs: &[(Digest, u64)],
    format: Format,
    stats: PushStats,
) -> Result<PushedManifest, PublishError> {
    let shown = platform.to_string();
    let config_digest = pusher
        .push_blob_bytes(repo, config_bytes)
        .await
        .map_err(blob_error(&shown, "the image config".into()))?;
    let manifest = image_manifest(format, (&config_digest, config_bytes.len() as u64), blobs);
    push_image_manifest(pusher, repo, platform, manifest, config_digest, stats).await
}

/// An image manifest pushed by digest once its config and layers are in
/// `repo`, noting whether the repository held it before (see
/// [`absent_before`]).
pub(super) async fn push_image_manifest(
    pusher: &Pusher<'_>,
    repo: &Reference,
    platform: Platform,
    manifest: Assembled,
    config_digest: Digest,
    stats: PushStats,
) -> Result<PushedManifest, PublishError> {
    let created = absent_before(pusher, repo, &manifest.digest).await;
    pusher
        .push_manifest(repo, &manifest.digest, &manifest.bytes, manifest.media_type)
        .await
        .map_err(|source| PublishError::PushManifest {
            platform: platform.to_string(),
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
        created,
    })
}

/// Whether `repo` lacks manifest `digest`, asked before pushing it. Not
/// knowing counts as held: what might be someone else's is never ours.
pub(super) async fn absent_before(pusher: &Pusher<'_>, repo: &Reference, digest: &Digest) -> bool {
    match pusher.served_digest(repo, digest.as_str()).await {
        Ok(served) => served.is_none(),
        Err(e) => {
            tracing::info!(manifest = %digest, error = %e, "could not tell whether the repository held the manifest");
            false
        }
    }
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
///
/// Each tag is written once: one that already serves the digest is left as
/// it is (an immutable-tag registry refuses even an identical rewrite). What
/// was written, and whether the index is new, goes into `ledger`.
pub async fn push_tags(
    registry: &RegistryClient,
    repo: &Reference,
    manifests: &[PushedManifest],
    tags: &[String],
    format: Format,
    cancel: CancellationToken,
    ledger: &Ledger,
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
            if absent_before(&pusher, repo, &list.digest).await {
                ledger.created(&list.digest);
            }
            (list.bytes, list.media_type, list.digest)
        }
    };
    for tag in tags {
        match pusher.served_digest(repo, tag).await {
            Ok(Some(served)) if served == digest => {
                tracing::debug!(tag = %tag, digest = %digest, "the tag already serves the image; not written again");
                continue;
            }
            Ok(_) => {}
            // Not knowing what the tag serves, write it: the write says the rest.
            Err(e) => {
                tracing::info!(tag = %tag, error = %e, "could not read the tag before writing it")
            }
        }
        ledger.writing(tag);
        match pusher.push_manifest(repo, tag, &bytes, media_type).await {
            Ok(_) => ledger.moved(tag),
            Err(source) => {
                if source.write_refused() {
                    ledger.refused(tag);
                }
                return Err(PublishError::Tag {
                    tag: tag.clone(),
                    source,
                });
            }
        }
    }
    Ok(Tagged {
        digest,
        media_type,
        size: bytes.len() as u64,
    })
}
