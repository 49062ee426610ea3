//! Writing to a registry: blob existence checks, cross-repository mounts,
//! blob uploads and manifest pushes, with push-scoped credentials, retries
//! for transient failures and cancellation.
//!
//! Why not oci-client's push calls: its `push_blob` takes the whole blob as
//! `Bytes` (a 2 GiB layer would need 2 GiB of memory), `push_blob_stream`
//! only streams through fixed-size chunked PATCHes configured client-wide,
//! `mount_blob` loses the upload `Location` when a registry answers 202 (so
//! the session cannot be cancelled), and `push_manifest_raw` hides the
//! `Docker-Content-Digest` the registry reports. The requests go out with
//! reqwest through the host's [`super::host::RegistryHost`], carrying a
//! token for exactly the access each needs (see [`Access`]).

use std::future::Future;

use reqwest::header::CONTENT_LENGTH;
use reqwest::Method;
use tokio_util::sync::CancellationToken;

pub(super) use super::attempt::PushAuth;
use super::client::RegistryClient;
use super::error::RegistryError;
pub use super::pipeline::RetryPolicy;
use super::pipeline::{Attempt, Retrying};
use crate::oci::reference::Reference;
use crate::oci::Digest;

mod delete;
mod look;
mod tags;
pub use delete::Deleted;
pub use tags::TagList;

/// Pushes through one [`RegistryClient`], aborting when `cancel` fires.
pub struct Pusher<'a> {
    pub(super) client: &'a RegistryClient,
    cancel: CancellationToken,
    retry: RetryPolicy,
}

/// What a request needs the registry to allow, and so which token scopes
/// to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access<'r> {
    /// Read and write the repository.
    Push,
    /// Push, and read `from` (a cross-repository mount needs both).
    MountFrom(&'r str),
    /// Push and delete (distribution asks `delete` for manifest deletes).
    Delete,
}

impl Access<'_> {
    fn scopes(self, repository: &str) -> Vec<String> {
        match self {
            Access::Push => vec![format!("repository:{repository}:pull,push")],
            Access::MountFrom(from) => vec![
                format!("repository:{repository}:pull,push"),
                format!("repository:{from}:pull"),
            ],
            Access::Delete => vec![format!("repository:{repository}:delete,pull,push")],
        }
    }
}

/// What became of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository already had it; nothing was sent.
    Existed,
    Uploaded,
}

impl RegistryClient {
    /// A pusher using this client's credentials and transports.
    pub fn pusher(&self, cancel: CancellationToken) -> Pusher<'_> {
        Pusher {
            client: self,
            cancel,
            retry: RetryPolicy::default(),
        }
    }
}

impl<'a> Pusher<'a> {
    pub fn with_retry(mut self, retry: RetryPolicy) -> Pusher<'a> {
        self.retry = retry;
        self
    }

    /// True if `repo` holds blob `digest` (HEAD; 404 means no).
    pub async fn blob_exists(
        &self,
        repo: &Reference,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let shown = repo.with_digest(digest).to_string();
        self.with_retries(repo, Access::Push, |auth| {
            let shown = shown.clone();
            async move {
                let url = auth.url(&format!("/v2/{}/blobs/{digest}", repo.repository))?;
                let response = auth
                    .request(Method::HEAD, url)
                    .send()
                    .await
                    .map_err(|e| auth.unreachable(e))?;
                match response.status().as_u16() {
                    200 => Ok(true),
                    404 => Ok(false),
                    _ => Err(auth.failure(response, &shown).await),
                }
            }
        })
        .await
    }

    /// Asks the registry to link blob `digest` from repository `from_repo`
    /// (same registry, path without host) into `repo`. True if mounted;
    /// false if the registry declined (then the blob must be uploaded).
    // NOTE: a registry that cannot mount (no access to `from_repo`, the blob
    // is not there, or mounting is off, as on ECR unless its
    // "blob mounting" setting is enabled) answers 202 and opens an ordinary
    // upload session instead; we cancel that session so it does not linger.
    pub async fn mount_blob(
        &self,
        repo: &Reference,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<bool, RegistryError> {
        let shown = repo.with_digest(digest).to_string();
        self.with_retries(repo, Access::MountFrom(from_repo), |auth| {
            let shown = shown.clone();
            async move {
                let mut url = auth.url(&format!("/v2/{}/blobs/uploads/", repo.repository))?;
                url.query_pairs_mut()
                    .append_pair("mount", digest)
                    .append_pair("from", from_repo);
                let response = auth
                    .request(Method::POST, url)
                    .header(CONTENT_LENGTH, 0)
                    .send()
                    .await
                    .map_err(|e| auth.unreachable(e))?;
                match response.status().as_u16() {
                    201 => Ok(true),
                    202 => {
                        cancel_upload(&auth, &response).await;
                        Ok(false)
                    }
                    _ => Err(auth.failure(response, &shown).await),
                }
            }
        })
        .await
    }

    /// Pushes `bytes` (a config blob or other small document) unless the
    /// repository has it already; returns its digest.
    pub async fn push_blob_bytes(
        &self,
        repo: &Reference,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::sha256_of(bytes);
        if !self.blob_exists(repo, &digest).await? {
            let source = super::upload::Source::Bytes(bytes);
            self.with_retries(repo, Access::Push, |auth| {
                super::upload::upload(auth, repo, &source, &digest, bytes.len() as u64)
            })
            .await?;
        }
        Ok(digest)
    }

    /// Streams the file at `path` to `repo` as blob `digest` of `size`
    /// bytes, unless the repository has it already. The file is read in
    /// small pieces as the request goes out, never whole, and reopened on a
    /// retry. The registry checks the digest when the upload completes.
    pub async fn push_blob_file(
        &self,
        repo: &Reference,
        path: &std::path::Path,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobPush, RegistryError> {
        let on_disk = tokio::fs::metadata(path)
            .await
            .map_err(|e| super::upload::local_error(path, &e))?
            .len();
        if on_disk != size {
            return Err(RegistryError::LocalFile {
                path: path.display().to_string(),
                detail: format!(
                    "the file has {on_disk} bytes, but the layer was described with {size}"
                ),
            });
        }
        if self.blob_exists(repo, digest).await? {
            return Ok(BlobPush::Existed);
        }
        let source = super::upload::Source::File(path);
        self.with_retries(repo, Access::Push, |auth| {
            super::upload::upload(auth, repo, &source, digest, size)
        })
        .await?;
        Ok(BlobPush::Uploaded)
    }

    /// Uploads a blob whose bytes and digest arrive while it runs (see
    /// [`StreamedBlob`]); `Ok(None)` when the producer abandoned it. Opening
    /// the session is retried; the streamed body itself cannot be.
    pub async fn push_blob_streamed(
        &self,
        repo: &Reference,
        blob: super::upload::StreamedBlob,
    ) -> Result<Option<Digest>, RegistryError> {
        let auth = tokio::select! {
            _ = self.cancel.cancelled() => return Err(RegistryError::Cancelled),
            auth = self.authorize(repo, Access::Push) => auth?,
        };
        tokio::select! {
            _ = self.cancel.cancelled() => Err(RegistryError::Cancelled),
            done = super::upload::upload_streamed(auth, repo, blob) => done,
        }
    }

    /// Puts manifest `bytes` of `media_type` under `tag_or_digest`; returns
    /// the digest, after checking the one the registry reports against ours.
    pub async fn push_manifest(
        &self,
        repo: &Reference,
        tag_or_digest: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let answer = self
            .put_manifest(repo, tag_or_digest, bytes, media_type, None)
            .await?;
        Ok(answer.digest)
    }

    /// Runs `op` with a fresh push authorization as [`Retrying`] does, with
    /// this pusher's policy and cancellation; a first 401 re-resolves the
    /// credentials (an expired ECR token) without counting as an attempt.
    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        repo: &Reference,
        access: Access<'_>,
        op: F,
    ) -> Result<T, RegistryError>
    where
        F: FnMut(PushAuth) -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let retrying = Retrying {
            policy: self.retry,
            cancel: Some(&self.cancel),
            registry: &repo.registry,
            count_attempts: true,
        };
        // Each attempt's future is made while the operation is borrowed and
        // then owns what it needs, so attempts take turns with `op`.
        let op = std::sync::Mutex::new(op);
        let attempt = || async {
            match self.authorize(repo, access).await {
                Ok(auth) => {
                    let sent = (op.lock().unwrap_or_else(|held| held.into_inner()))(auth);
                    Attempt::Done(sent.await)
                }
                Err(e) => Attempt::Done(Err(e)),
            }
        };
        let renew = || async {
            self.client.forget_host(repo.api_host()).await;
            true
        };
        retrying.run(attempt, renew).await
    }

    /// Resolves credentials for `repo`'s host and, when the registry uses
    /// the bearer-token challenge, the (cached) token for `access`.
    async fn authorize(
        &self,
        repo: &Reference,
        access: Access<'_>,
    ) -> Result<PushAuth, RegistryError> {
        let session = self.client.session_for(repo).await?;
        let host = self.client.host_for(repo)?;
        host.ensure_challenge().await?;
        let header = host
            .authorization(&access.scopes(&repo.repository), &session.auth)
            .await
            .map_err(|e| match e {
                RegistryError::Unauthorized { registry, detail } => RegistryError::Unauthorized {
                    registry,
                    detail: format!("{detail} ({})", session.note),
                },
                other => other,
            })?;
        Ok(PushAuth {
            http: host.http.clone(),
            base: host.base()?,
            header,
            registry: repo.registry.clone(),
            note: session.note,
        })
    }
}

/// Best effort: deletes the upload session a declined mount opened.
async fn cancel_upload(auth: &PushAuth, response: &reqwest::Response) {
    let Some(location) = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if let Ok(url) = auth.resolve(location) {
        // A registry that cannot cancel lets the session expire on its own.
        let _ = auth.request(Method::DELETE, url).send().await;
    }
}
