//! Layers the repository may already have: found by the digest the layer
//! cache remembers, or mounted from another repository of the same
//! registry we pushed the blob to before.

use super::cache::CachedLayer;
use super::error::PublishError;
use super::push::blob_error;
use crate::oci::Reference;
use crate::registry::Pusher;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrived {
    /// Already in the repository.
    Existed,
    /// Mounted from another repository.
    Mounted,
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
