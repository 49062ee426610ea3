//! Looking before writing, with the push's own credentials: what a tag or a
//! digest of a repository serves now. A publish uses it twice: a tag that
//! already serves the digest being pushed is not written again (registries
//! with immutable tags, such as ECR with `imageTagMutability = IMMUTABLE`,
//! refuse even an identical rewrite), and a manifest the repository held
//! before the push is not counted as created by it (so destroy never deletes
//! an identical image another state pushed first).

use reqwest::header::ACCEPT;
use reqwest::Method;

use super::{Access, Pusher};
use crate::oci::reference::Reference;
use crate::oci::Digest;
use crate::registry::client::MANIFEST_MEDIA_TYPES;
use crate::registry::error::RegistryError;

/// A manifest body is small; a larger answer is not one.
const MAX_MANIFEST_BODY: usize = 4 * 1024 * 1024;

impl Pusher<'_> {
    /// What `repo:<tag>` or `repo@<digest>` serves now: its digest, or `None`
    /// when the registry has no such manifest (404). Every manifest media
    /// type is accepted, as on every read, so the registry names the digest
    /// it really holds rather than a conversion.
    pub async fn served_digest(
        &self,
        repo: &Reference,
        tag_or_digest: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let shown = format!("{}:{tag_or_digest}", repo.repository_reference());
        let path = format!("/v2/{}/manifests/{tag_or_digest}", repo.repository);
        let head = self
            .with_retries(repo, Access::Push, |auth| {
                let (shown, path) = (shown.clone(), path.clone());
                async move {
                    let response = auth
                        .request(Method::HEAD, auth.url(&path)?)
                        .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "))
                        .send()
                        .await
                        .map_err(|e| auth.unreachable(e))?;
                    match response.status().as_u16() {
                        200 => Ok(Some(
                            response
                                .headers()
                                .get("docker-content-digest")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|d| Digest::parse(d).ok()),
                        )),
                        404 => Ok(None),
                        _ => Err(auth.failure(response, &shown).await),
                    }
                }
            })
            .await?;
        match head {
            None => Ok(None),
            Some(Some(named)) => Ok(Some(named)),
            // Found, but no digest named: a digest asked for is its own
            // answer; for a tag, hash what a GET serves.
            Some(None) => match Digest::parse(tag_or_digest) {
                Ok(asked) => Ok(Some(asked)),
                Err(_) => self.hashed_manifest(repo, &path, &shown).await,
            },
        }
    }

    async fn hashed_manifest(
        &self,
        repo: &Reference,
        path: &str,
        shown: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        self.with_retries(repo, Access::Push, |auth| async move {
            let response = auth
                .request(Method::GET, auth.url(path)?)
                .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "))
                .send()
                .await
                .map_err(|e| auth.unreachable(e))?;
            match response.status().as_u16() {
                200 => {}
                404 => return Ok(None),
                _ => return Err(auth.failure(response, shown).await),
            }
            let body = crate::registry::body::read_limited(response, MAX_MANIFEST_BODY)
                .await
                .map_err(|detail| RegistryError::InvalidManifest {
                    detail: format!("{shown}: {detail}"),
                })?;
            Ok(Some(Digest::sha256_of(&body)))
        })
        .await
    }
}
