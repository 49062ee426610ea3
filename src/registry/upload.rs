//! One blob upload attempt: open a session with POST, then send the whole
//! blob in a single streamed PUT with the digest (the spec's "monolithic"
//! upload after POST, as containerd does). One request body means one pass
//! over the file and no chunk bookkeeping; the body is a stream of small
//! reads, so memory stays flat however large the layer.

use std::path::Path;

use futures::{stream, StreamExt as _};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Body, Method};
use tokio::io::AsyncReadExt as _;

use super::attempt::PushAuth;
use super::error::RegistryError;
use crate::oci::reference::Reference;
use crate::oci::Digest;

/// Bytes read from disk per body piece.
const READ_SIZE: usize = 256 * 1024;

/// What to upload; a file is reopened for every attempt.
pub(super) enum Source<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

impl Source<'_> {
    async fn body(&self) -> Result<Body, RegistryError> {
        match self {
            Source::Bytes(bytes) => Ok(Body::from(bytes.to_vec())),
            Source::File(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| local_error(path, &e))?;
                let pieces = stream::try_unfold(file, |mut file| async move {
                    let mut buffer = vec![0u8; READ_SIZE];
                    let read = file.read(&mut buffer).await?;
                    if read == 0 {
                        return Ok::<_, std::io::Error>(None);
                    }
                    buffer.truncate(read);
                    Ok(Some((buffer, file)))
                });
                Ok(Body::wrap_stream(pieces))
            }
        }
    }
}

pub(super) fn local_error(path: &Path, err: &std::io::Error) -> RegistryError {
    RegistryError::LocalFile {
        path: path.display().to_string(),
        detail: err.to_string(),
    }
}

/// Uploads `source` as blob `digest` of `size` bytes to `repo`.
pub(super) async fn upload(
    auth: PushAuth,
    repo: &Reference,
    source: &Source<'_>,
    digest: &Digest,
    size: u64,
) -> Result<(), RegistryError> {
    let shown = repo.with_digest(digest).to_string();
    let mut url = open_session(&auth, repo, &shown).await?;
    // The location may carry its own query (distribution's `_state`);
    // the digest is appended to it, not put in its place.
    url.query_pairs_mut().append_pair("digest", digest);
    let response = auth
        .request(Method::PUT, url)
        .header(CONTENT_TYPE, "application/octet-stream")
        // An explicit length keeps hyper from using chunked transfer
        // encoding, which some registries and proxies in front of them
        // refuse for uploads.
        .header(CONTENT_LENGTH, size)
        .body(source.body().await?)
        .send()
        .await
        .map_err(|e| auth.unreachable(e))?;
    if response.status().as_u16() != 201 {
        return Err(auth.failure(response, &shown).await);
    }
    Ok(())
}

/// An upload whose bytes are produced while it runs and whose digest is
/// known only at the end (a layer compressed as it streams from the daemon).
pub struct StreamedBlob {
    /// The blob's bytes, piece by piece; closed when the blob is complete.
    pub pieces: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    /// The blob's digest once all pieces are sent, or `None` to abandon the
    /// upload (the bytes turned out not to be wanted).
    pub digest: tokio::sync::oneshot::Receiver<Option<Digest>>,
}

/// Opens a session (POST), sends the pieces as one streamed PATCH, as the
/// docker CLI does, then completes it with PUT `?digest=` (or deletes the
/// session when abandoned). The PATCH cannot be retried: its bytes are gone
/// once sent, so a failure is the caller's to handle (by streaming again).
pub(super) async fn upload_streamed(
    auth: PushAuth,
    repo: &Reference,
    blob: StreamedBlob,
) -> Result<Option<Digest>, RegistryError> {
    let shown = format!("{} (streamed layer)", repo.repository_reference());
    let location = open_session(&auth, repo, &shown).await?;
    let pieces =
        tokio_stream::wrappers::ReceiverStream::new(blob.pieces).map(Ok::<_, std::io::Error>);
    let response = auth
        .request(Method::PATCH, location)
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(Body::wrap_stream(pieces))
        .send()
        .await
        .map_err(|e| auth.unreachable(e))?;
    if response.status().as_u16() != 202 {
        return Err(auth.failure(response, &shown).await);
    }
    let location = next_location(&auth, &response)?;
    let Ok(Some(digest)) = blob.digest.await else {
        // Abandoned: a registry that cannot delete sessions lets them expire.
        let _ = auth.request(Method::DELETE, location).send().await;
        return Ok(None);
    };
    let mut url = location;
    url.query_pairs_mut().append_pair("digest", &digest);
    let response = auth
        .request(Method::PUT, url)
        .header(CONTENT_LENGTH, 0)
        .send()
        .await
        .map_err(|e| auth.unreachable(e))?;
    if response.status().as_u16() != 201 {
        let shown = repo.with_digest(&digest).to_string();
        return Err(auth.failure(response, &shown).await);
    }
    Ok(Some(digest))
}

/// Opens an upload session (`POST /v2/<name>/blobs/uploads/`); where to
/// send the bytes.
async fn open_session(
    auth: &PushAuth,
    repo: &Reference,
    shown: &str,
) -> Result<reqwest::Url, RegistryError> {
    let start = auth.url(&format!("/v2/{}/blobs/uploads/", repo.repository))?;
    let response = auth
        .request(Method::POST, start)
        .header(CONTENT_LENGTH, 0)
        .send()
        .await
        .map_err(|e| auth.unreachable(e))?;
    if response.status().as_u16() != 202 {
        return Err(auth.failure(response, shown).await);
    }
    next_location(auth, &response)
}

/// The `Location` an upload answer names, resolved against the registry.
fn next_location(
    auth: &PushAuth,
    response: &reqwest::Response,
) -> Result<reqwest::Url, RegistryError> {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Rejected {
            registry: auth.registry.clone(),
            detail: "the registry answered an upload step without saying where to go on (no Location header)".into(),
        })?;
    auth.resolve(location)
}
