//! One blob of another repository put into ours: nothing when it is there
//! already, a cross-repository mount on the same registry, else its bytes
//! streamed from the source registry into an upload as they arrive, never
//! held whole, the digest checked on the way (a source that sends other
//! bytes abandons the upload).

use sha2::{Digest as _, Sha256};

use super::push::Pusher;
use super::upload::StreamedBlob;
use super::RegistryError;
use crate::oci::{Digest, Reference};

/// What became of a copied blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobCopy {
    /// The target repository had it.
    Existed,
    /// Linked from the source repository of the same registry.
    Mounted,
    /// Read from the source and uploaded.
    Copied,
}

/// Pieces in flight between the source's response and the upload.
const PIECES_IN_FLIGHT: usize = 8;

impl Pusher<'_> {
    /// Makes `to` hold blob `digest` of `from`'s repository.
    pub async fn copy_blob(
        &self,
        from: &Reference,
        to: &Reference,
        digest: &Digest,
    ) -> Result<BlobCopy, RegistryError> {
        if self.blob_exists(to, digest).await? {
            return Ok(BlobCopy::Existed);
        }
        if from.registry == to.registry && self.mount_blob(to, digest, &from.repository).await? {
            return Ok(BlobCopy::Mounted);
        }
        if digest.as_str().split_once(':').map(|(a, _)| a) != Some("sha256") {
            return Err(RegistryError::InvalidManifest {
                detail: format!("blob {digest} is not sha256; only sha256 blobs are copied"),
            });
        }
        let mut answer = self.client.open_blob(from, digest).await?;
        let (pieces_tx, pieces) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
        let (digest_tx, digest_rx) = tokio::sync::oneshot::channel();
        let read = async move {
            let mut hasher = Sha256::new();
            let mut failure = None;
            loop {
                match answer.chunk().await {
                    Ok(Some(piece)) => {
                        hasher.update(&piece);
                        if pieces_tx.send(piece).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(RegistryError::Unreachable {
                            registry: from.registry.clone(),
                            detail: crate::diag::error_chain(&e),
                        });
                        break;
                    }
                }
            }
            let got = Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize()))).ok();
            let good = failure.is_none() && got.as_ref() == Some(digest);
            drop(pieces_tx);
            let _ = digest_tx.send(good.then(|| digest.clone()));
            match failure {
                Some(e) => Err(e),
                None if good => Ok(()),
                None => Err(RegistryError::DigestMismatch {
                    expected: digest.to_string(),
                    actual: got.map(String::from).unwrap_or_default(),
                }),
            }
        };
        let blob = StreamedBlob {
            pieces,
            digest: digest_rx,
        };
        let (read, pushed) = tokio::join!(read, self.push_blob_streamed(to, blob));
        read?;
        pushed?;
        Ok(BlobCopy::Copied)
    }
}
