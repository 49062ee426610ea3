//! Deleting a manifest by digest (`DELETE /v2/<name>/manifests/<digest>`),
//! which registries may refuse: CNCF distribution answers 405 unless
//! `storage.delete.enabled` is set, and some hosted registries never allow it.

use crate::oci::Digest;
use reqwest::Method;

use super::Pusher;
use crate::oci::reference::Reference;
use crate::registry::error::RegistryError;

/// What became of a manifest delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// Already gone (404): nothing to do.
    Absent,
    /// The registry does not delete manifests (405 or 501 UNSUPPORTED).
    Unsupported {
        status: u16,
    },
}

impl Pusher<'_> {
    /// Deletes manifest `digest` of `repo` (and with it every tag naming it).
    pub async fn delete_manifest(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<Deleted, RegistryError> {
        let shown = repo.with_digest(digest).to_string();
        self.with_retries(repo, super::Access::Delete, |auth| {
            let shown = shown.clone();
            async move {
                let path = format!("/v2/{}/manifests/{digest}", repo.repository);
                let response = auth
                    .request(Method::DELETE, auth.url(&path)?)
                    .send()
                    .await
                    .map_err(|e| auth.unreachable(e))?;
                match response.status().as_u16() {
                    200 | 202 => Ok(Deleted::Deleted),
                    404 => Ok(Deleted::Absent),
                    status @ (405 | 501) => Ok(Deleted::Unsupported { status }),
                    _ => Err(auth.failure(response, &shown).await),
                }
            }
        })
        .await
    }
}
