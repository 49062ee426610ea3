//! Reading manifests and blobs: what each read asks the registry, and when
//! the content cache may answer instead.
//!
//! The cache holds content by digest, which proves the bytes but not that a
//! given repository has them. So it answers only where the registry has
//! already vouched for that repository: a manifest after a `HEAD` of the
//! reference, a manifest or config reached from a manifest the repository
//! served (the registry refuses a manifest whose children or config it
//! lacks). [`RegistryClient::get_manifest`] always asks the registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::{Method, StatusCode};

use super::body::{read_limited, BodyError};
use super::client::{FetchedManifest, RegistryClient};
use super::error::RegistryError;
use super::host::RegistryHost;

use super::read::Read;
use crate::oci::digest::digest_with_algorithm;
use crate::oci::{Digest, Reference};

/// Manifests are JSON documents of a few KiB; distribution refuses to store
/// one over 4 MiB, so none can be served bigger.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

impl RegistryClient {
    /// The manifest `reference` points to, as the registry serves it now
    /// (by digest if it has one), checked against its digest.
    pub async fn get_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let key = format!("GET {reference}");
        self.manifest_flights
            .run(&key, || self.fetch_manifest(reference))
            .await
    }

    /// Like [`RegistryClient::get_manifest`], but one `HEAD` when the
    /// manifest it names is already in the cache: the plan-time read.
    pub async fn get_manifest_cached(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        if let Some(digest) = self.head_manifest(reference).await? {
            if let Some(bytes) = self.content.get(&digest) {
                return fetched(&bytes, digest, &reference.to_string());
            }
        }
        self.get_manifest(reference).await
    }

    /// A manifest an index of `reference`'s repository lists, by digest.
    pub async fn get_child_manifest(
        &self,
        child: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        if let Some(digest) = &child.digest {
            if let Some(bytes) = self.content.get(digest) {
                return fetched(&bytes, digest.clone(), &child.to_string());
            }
        }
        self.get_manifest(child).await
    }

    /// What each tag of `repo` points at now: `Some(digest)`, or `None` when
    /// the tag or the repository is missing; one `HEAD` per tag, all at once.
    pub async fn tag_digests(
        &self,
        repo: &Reference,
        tags: &[String],
    ) -> Result<BTreeMap<String, Option<Digest>>, RegistryError> {
        let lookups = tags.iter().map(|tag| async move {
            let mut tagged = repo.clone();
            tagged.tag = Some(tag.clone());
            tagged.digest = None;
            let digest = match self.head_manifest(&tagged).await {
                Ok(Some(digest)) => Some(digest),
                // No digest header: hash what a GET serves instead.
                Ok(None) => match self.get_manifest(&tagged).await {
                    Ok(fetched) => Some(fetched.digest),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e),
                },
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            Ok((tag.clone(), digest))
        });
        futures::future::try_join_all(lookups)
            .await
            .map(|pairs| pairs.into_iter().collect())
    }

    /// The digest the registry names for `reference` in a `HEAD`, or `None`
    /// when it names none usable; a missing manifest is `NotFound`.
    ///
    /// NOTE: a HEAD has no body to hash, so the `Docker-Content-Digest`
    /// header is taken as the registry's word for what the tag points at
    /// (the same word a GET by tag gives). Any bytes used afterwards are
    /// checked against that digest, and what runs is pulled by digest.
    pub async fn head_manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<Digest>, RegistryError> {
        let key = format!("HEAD {reference}");
        self.head_flights
            .run(&key, || async {
                let shown = reference.to_string();
                let answer = self
                    .read(reference, Method::HEAD, manifest_path(reference))
                    .await?;
                let (answer, reader, note) = answer;
                if !answer.status().is_success() {
                    return Err(noted(reader.failure(answer, &shown).await, &note));
                }
                let named = answer
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|d| Digest::parse(d).ok());
                Ok(match (&reference.digest, named) {
                    // A HEAD by digest found it; the digest is the one asked for.
                    (Some(asked), _) => Some(asked.clone()),
                    (None, named) => named,
                })
            })
            .await
    }

    /// A blob of `repository` (its tag and digest are ignored), at most
    /// `limit` bytes, verified against `digest`.
    pub async fn get_blob_limited(
        &self,
        repository: &Reference,
        digest: &Digest,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if digest.recompute(b"").is_none() {
            return Err(RegistryError::InvalidManifest {
                detail: format!("unsupported or malformed blob digest {digest:?}"),
            });
        }
        if let Some(bytes) = self.content.get(digest) {
            if bytes.len() as u64 <= limit {
                return Ok(bytes.to_vec());
            }
        }
        let key = format!("GET {}@{digest} {limit}", repository.repository_reference());
        let bytes = self
            .blob_flights
            .run(&key, || self.fetch_blob(repository, digest, limit))
            .await?;
        Ok(bytes.to_vec())
    }

    /// A small JSON document of `repository` at `/v2/<name>/<what>` (a
    /// referrers list), at most as large as a manifest may be.
    pub(super) async fn get_document(
        &self,
        repository: &Reference,
        what: String,
        shown: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let (answer, reader, note) = self.read(repository, Method::GET, what).await?;
        if answer.status() != StatusCode::OK {
            return Err(noted(reader.failure(answer, shown).await, &note));
        }
        read_limited(answer, MAX_MANIFEST)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => RegistryError::InvalidManifest {
                    detail: format!("{shown}: the answer is larger than {limit} bytes"),
                },
                BodyError::Broken(detail) => RegistryError::Unreachable {
                    registry: repository.registry.clone(),
                    detail: format!("{shown}: {detail}"),
                },
            })
    }

    /// The response to `GET` of blob `digest` in `repository`, its body not
    /// read yet: for copying a blob of any size without holding it.
    pub(super) async fn open_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<reqwest::Response, RegistryError> {
        let shown = repository.with_digest(digest).to_string();
        let (answer, reader, note) = self
            .read(repository, Method::GET, format!("blobs/{digest}"))
            .await?;
        if !answer.status().is_success() {
            return Err(noted(reader.failure(answer, &shown).await, &note));
        }
        Ok(answer)
    }

    async fn fetch_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        limit: u64,
    ) -> Result<Arc<Vec<u8>>, RegistryError> {
        let answer = self.open_blob(repository, digest).await?;
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        let bytes = read_limited(answer, limit_usize)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { .. } => RegistryError::TooLarge {
                    digest: digest.clone(),
                    limit,
                },
                BodyError::Broken(detail) => RegistryError::Unreachable {
                    registry: repository.registry.clone(),
                    detail,
                },
            })?;
        let actual = digest.recompute(&bytes);
        if actual.as_ref() != Some(digest) {
            return Err(RegistryError::DigestMismatch {
                expected: digest.to_string(),
                actual: actual.map(String::from).unwrap_or_default(),
            });
        }
        self.content.put(digest, &bytes);
        Ok(Arc::new(bytes))
    }

    async fn fetch_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let shown = reference.to_string();
        let (answer, reader, note) = self
            .read(reference, Method::GET, manifest_path(reference))
            .await?;
        if answer.status() != StatusCode::OK {
            return Err(noted(reader.failure(answer, &shown).await, &note));
        }
        let header = answer
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(answer, MAX_MANIFEST)
            .await
            .map_err(|e| match e {
                // Final, not transient: a registry serving this is not a blip.
                BodyError::TooLarge { limit } => RegistryError::InvalidManifest {
                    detail: format!("{shown}: the manifest is larger than the {limit} bytes a registry may serve"),
                },
                BodyError::Broken(detail) => RegistryError::Unreachable {
                    registry: reference.registry.clone(),
                    detail: format!("{shown}: {detail}"),
                },
            })?;
        let digest = Digest::sha256_of(&bytes);
        // The digest asked for, else the one the registry claims, must name
        // the bytes we got: a tag's header is not trusted blindly.
        let asked = reference.digest.as_ref().map(Digest::to_string);
        for expected in [asked, header].into_iter().flatten() {
            let actual =
                digest_with_algorithm(&expected, &bytes).unwrap_or_else(|| digest.to_string());
            if actual != expected {
                return Err(RegistryError::DigestMismatch { expected, actual });
            }
        }
        self.content.put(&digest, &bytes);
        fetched(&bytes, digest, &shown)
    }

    /// Sends one read for `reference`'s repository with its host's
    /// credential; hands back the reader and credential note for errors.
    async fn read(
        &self,
        reference: &Reference,
        method: Method,
        what: String,
    ) -> Result<(reqwest::Response, Arc<RegistryHost>, String), RegistryError> {
        let session = self.session_for(reference).await?;
        let reader = self.host_for(reference)?;
        let read = Read {
            method,
            what,
            repository: &reference.repository,
            credential: &session.auth,
        };
        let answer = reader
            .read(&read)
            .await
            .map_err(|e| noted(e, &session.note))?;
        Ok((answer, reader, session.note))
    }
}

fn manifest_path(reference: &Reference) -> String {
    let name = match (&reference.digest, &reference.tag) {
        (Some(digest), _) => digest.as_str(),
        (None, Some(tag)) => tag.as_str(),
        (None, None) => "latest",
    };
    format!("manifests/{name}")
}

/// A manifest from bytes already checked against `digest`.
fn fetched(bytes: &[u8], digest: Digest, shown: &str) -> Result<FetchedManifest, RegistryError> {
    // The type comes from the document itself (required for Docker types,
    // set by every OCI producer we know; structure decides when absent), so
    // a cached manifest needs nothing but its bytes.
    let media_type = crate::oci::document::detect_media_type(bytes).map_err(|e| {
        RegistryError::InvalidManifest {
            detail: format!("{shown}: {e}"),
        }
    })?;
    Ok(FetchedManifest {
        bytes: bytes.to_vec(),
        media_type,
        digest,
    })
}

/// Adds which credentials were sent to a refusal, never the secret.
fn noted(err: RegistryError, note: &str) -> RegistryError {
    match err {
        RegistryError::Unauthorized { registry, detail } if !detail.contains(note) => {
            RegistryError::Unauthorized {
                registry,
                detail: format!("{detail} ({note})"),
            }
        }
        other => other,
    }
}
