//! OCI 1.1 referrers: manifests that carry a `subject` (provenance, an SBOM,
//! a signature) found from the manifest they are about, without touching
//! it or any index that lists it (distribution spec v1.1, "Listing
//! Referrers" and "Pushing Manifests with Subject").
//!
//! A registry with the referrers API answers a push of such a manifest with
//! `OCI-Subject` and lists them at `GET /v2/<name>/referrers/<digest>`. One
//! without it (distribution 2.8 and 3.x, Docker Hub, GHCR) needs the client
//! to keep the list itself: an OCI index under the tag `sha256-<hex>` of the
//! subject ("Referrers Tag Schema"). That list is shared with every other
//! tool, so it is updated by read, merge, write and read back: an entry of
//! another tool is carried over with every field it had, and a write that
//! lost a race (the index read back lacks ours, or the registry refused our
//! `If-Match`) starts over from a fresh read. Within this process the
//! updates of one subject also take turns, so two resources of one apply
//! never race at all.
//!
//! A registry that resolves `sha256-<hex>` to the subject itself (GitLab
//! does) or serves something else there does not hold a referrers index
//! under it: that is read as "no list yet", never as one.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;

use super::assemble::{referrers_index, Assembled};
use super::client::RegistryClient;
use super::error::RegistryError;
use super::push::{Access, Pusher};
use crate::oci::document::{Descriptor, Manifest};
use crate::oci::media_types::OCI_INDEX;
use crate::oci::{Digest, Reference};

/// Rounds of read, merge, write before a list that keeps changing is an error.
const MERGE_ROUNDS: u32 = 6;

/// Where a subject's referrers were found or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// The registry's referrers API.
    Api,
    /// The `sha256-<hex>` tag's index.
    Tag,
}

/// A subject's referrers as the registry lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrers {
    pub listing: Listing,
    pub descriptors: Vec<Descriptor>,
}

/// The fallback tag of `subject`: its algorithm and hex joined by `-`.
pub fn fallback_tag(subject: &Digest) -> String {
    subject.replacen(':', "-", 1)
}

impl RegistryClient {
    /// The referrers of `subject` in `repo`: from the referrers API when the
    /// registry has it (a 404 says it has not), else from the fallback tag.
    pub async fn referrers(
        &self,
        repo: &Reference,
        subject: &Digest,
    ) -> Result<Referrers, RegistryError> {
        if let Some(descriptors) = self.referrers_api(repo, subject).await? {
            return Ok(Referrers {
                listing: Listing::Api,
                descriptors,
            });
        }
        let entries = self.fallback_entries(repo, subject).await?.entries;
        let descriptors = entries
            .into_iter()
            .filter_map(|e| serde_json::from_value(e).ok())
            .collect();
        Ok(Referrers {
            listing: Listing::Tag,
            descriptors,
        })
    }

    /// `None` when the registry has no referrers API.
    async fn referrers_api(
        &self,
        repo: &Reference,
        subject: &Digest,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let shown = format!("referrers of {}", repo.with_digest(subject));
        let bytes = match self
            .get_document(repo, format!("referrers/{subject}"), &shown)
            .await
        {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        match Manifest::parse(&bytes, OCI_INDEX) {
            Ok(Manifest::Index(index)) => Ok(Some(index.manifests().clone())),
            Ok(Manifest::Image(_)) | Err(_) => Err(RegistryError::InvalidManifest {
                detail: format!("{shown}: the registry's answer is not an OCI index"),
            }),
        }
    }

    /// The fallback index of `subject`, as JSON entries, and the digest read.
    async fn fallback_entries(
        &self,
        repo: &Reference,
        subject: &Digest,
    ) -> Result<Fallback, RegistryError> {
        let mut tagged = repo.clone();
        tagged.tag = Some(fallback_tag(subject));
        tagged.digest = None;
        let fetched = match self.get_manifest(&tagged).await {
            Ok(fetched) => fetched,
            Err(e) if e.is_not_found() => return Ok(Fallback::default()),
            Err(e) => return Err(e),
        };
        let entries = (fetched.media_type == OCI_INDEX && fetched.digest != *subject)
            .then(|| serde_json::from_slice::<Value>(&fetched.bytes).ok())
            .flatten()
            .and_then(|index| index.get("manifests").and_then(Value::as_array).cloned());
        Ok(Fallback {
            read: Some(fetched.digest),
            entries: entries.unwrap_or_default(),
        })
    }
}

/// What the fallback tag held when read.
#[derive(Debug, Default)]
struct Fallback {
    /// The digest the tag served; `None` when it did not exist.
    read: Option<Digest>,
    entries: Vec<Value>,
}

/// The answer to a pushed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedReferrer {
    pub digest: Digest,
    pub listing: Listing,
}

/// One lock per subject (`registry/repository@digest`) for this process's
/// updates of its fallback index.
static FALLBACK_LOCKS: LazyLock<Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

fn fallback_lock(repo: &Reference, subject: &Digest) -> Arc<tokio::sync::Mutex<()>> {
    let key = repo.with_digest(subject).to_string();
    let mut locks = FALLBACK_LOCKS
        .lock()
        .unwrap_or_else(|held| held.into_inner());
    locks.entry(key).or_default().clone()
}

impl Pusher<'_> {
    /// Pushes `artifact` (a manifest whose `subject` is `subject`) by digest
    /// and makes sure it is listed: by the registry when it answers with
    /// `OCI-Subject`, else in the fallback index, where `entry` is added.
    pub async fn push_referrer(
        &self,
        repo: &Reference,
        artifact: &Assembled,
        subject: &Digest,
        entry: &Descriptor,
    ) -> Result<PushedReferrer, RegistryError> {
        let answer = self
            .put_manifest(
                repo,
                &artifact.digest,
                &artifact.bytes,
                artifact.media_type,
                None,
            )
            .await?;
        if answer.subject.as_deref() == Some(subject.as_str()) {
            return Ok(PushedReferrer {
                digest: answer.digest,
                listing: Listing::Api,
            });
        }
        let entry = serde_json::to_value(entry).map_err(|e| RegistryError::InvalidManifest {
            detail: format!("the referrer's descriptor: {e}"),
        })?;
        self.update_fallback(repo, subject, |entries| {
            let listed = entries.iter().any(|e| same_digest(e, &artifact.digest));
            (!listed).then(|| entries.push(entry.clone())).is_some()
        })
        .await?;
        Ok(PushedReferrer {
            digest: answer.digest,
            listing: Listing::Tag,
        })
    }

    /// Takes `referrer` out of `subject`'s fallback index, if it is there.
    pub async fn unlist_referrer(
        &self,
        repo: &Reference,
        subject: &Digest,
        referrer: &Digest,
    ) -> Result<(), RegistryError> {
        self.update_fallback(repo, subject, |entries| {
            let before = entries.len();
            entries.retain(|e| !same_digest(e, referrer));
            entries.len() != before
        })
        .await
    }

    /// Read, `change` (true when it changed the entries), write, read back;
    /// again from a fresh read when someone else wrote in between.
    async fn update_fallback(
        &self,
        repo: &Reference,
        subject: &Digest,
        mut change: impl FnMut(&mut Vec<Value>) -> bool,
    ) -> Result<(), RegistryError> {
        let lock = fallback_lock(repo, subject);
        let _turn = lock.lock().await;
        let tag = fallback_tag(subject);
        for round in 1..=MERGE_ROUNDS {
            let mut now = self.client.fallback_entries(repo, subject).await?;
            if !change(&mut now.entries) {
                return Ok(());
            }
            let index = referrers_index(&now.entries);
            let written = self
                .put_manifest(
                    repo,
                    &tag,
                    &index.bytes,
                    index.media_type,
                    now.read.as_ref(),
                )
                .await;
            match written {
                Err(RegistryError::Rejected { detail, .. }) if detail.starts_with(PRECONDITION) => {
                }
                Err(e) => return Err(e),
                Ok(_) => {
                    let mut after = self.client.fallback_entries(repo, subject).await?;
                    if after.read.as_ref() == Some(&index.digest) || !change(&mut after.entries) {
                        return Ok(());
                    }
                }
            }
            tracing::debug!(
                tag,
                round,
                "the referrers index changed while we wrote; merging again"
            );
        }
        Err(RegistryError::Rejected {
            registry: repo.registry.clone(),
            detail: format!(
                "the referrers index {}:{tag} kept changing under {MERGE_ROUNDS} attempts to update it",
                repo.repository_reference()
            ),
        })
    }

    /// Puts a manifest under `reference` (a tag or its digest) and returns the
    /// registry's answer: the digest (checked against the bytes) and the
    /// subject it says it indexed (`OCI-Subject`). With `if_match`, only if
    /// the reference still serves that digest, for registries that honour
    /// `If-Match` (a refusal is [`PRECONDITION`]).
    pub(super) async fn put_manifest(
        &self,
        repo: &Reference,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        if_match: Option<&Digest>,
    ) -> Result<PutAnswer, RegistryError> {
        let ours = Digest::sha256_of(bytes);
        if reference.contains(':') && reference != ours.as_str() {
            return Err(RegistryError::DigestMismatch {
                expected: reference.into(),
                actual: ours.into(),
            });
        }
        let shown = format!("{}:{reference}", repo.repository_reference());
        let content_type = header(media_type)?;
        let condition = if_match.map(|d| header(&format!("\"{d}\""))).transpose()?;
        let answer = self
            .with_retries(repo, Access::Push, |auth| {
                let (shown, content_type, condition) =
                    (shown.clone(), content_type.clone(), condition.clone());
                async move {
                    let path = format!("/v2/{}/manifests/{reference}", repo.repository);
                    let mut request = auth
                        .request(Method::PUT, auth.url(&path)?)
                        .header(CONTENT_TYPE, content_type);
                    if let Some(condition) = condition {
                        request = request.header("if-match", condition);
                    }
                    let response = request
                        .body(bytes.to_vec())
                        .send()
                        .await
                        .map_err(|e| auth.unreachable(e))?;
                    match response.status().as_u16() {
                        201 => Ok(answer_of(&response)),
                        412 => Err(RegistryError::Rejected {
                            registry: repo.registry.clone(),
                            detail: format!("{PRECONDITION}: {shown} changed since it was read"),
                        }),
                        _ => Err(auth.failure(response, &shown).await),
                    }
                }
            })
            .await?;
        // The digest header is optional; when present it must name our bytes.
        match answer.0 {
            Some(reported) if reported != ours.as_str() => Err(RegistryError::DigestMismatch {
                expected: ours.into(),
                actual: reported,
            }),
            _ => Ok(PutAnswer {
                digest: ours,
                subject: answer.1,
            }),
        }
    }
}

/// How a refused `If-Match` starts its message.
const PRECONDITION: &str = "precondition failed";

/// What a registry said to a manifest put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PutAnswer {
    pub digest: Digest,
    /// `OCI-Subject`: the registry indexed the manifest as a referrer of it.
    pub subject: Option<String>,
}

/// `Docker-Content-Digest` and `OCI-Subject` of an answer.
// NOTE: ECR and some others omit `Location` on a manifest put, which the spec
// requires; it is never needed, so it is not looked at.
fn answer_of(response: &reqwest::Response) -> (Option<String>, Option<String>) {
    let text = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    (text("docker-content-digest"), text("oci-subject"))
}

fn header(text: &str) -> Result<HeaderValue, RegistryError> {
    HeaderValue::from_str(text).map_err(|_| RegistryError::InvalidManifest {
        detail: format!("{text:?} is not a valid header value"),
    })
}

fn same_digest(entry: &Value, digest: &Digest) -> bool {
    entry.get("digest").and_then(Value::as_str) == Some(digest.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_tag_joins_algorithm_and_hex() {
        let subject = Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        assert_eq!(
            fallback_tag(&subject),
            format!("sha256-{}", "ab".repeat(32))
        );
    }

    #[test]
    fn entries_are_matched_by_digest() {
        let digest = Digest::parse(&format!("sha256:{}", "cd".repeat(32))).unwrap();
        assert!(same_digest(
            &serde_json::json!({"digest": digest.as_str()}),
            &digest
        ));
        assert!(!same_digest(
            &serde_json::json!({"digest": "sha256:00"}),
            &digest
        ));
        assert!(!same_digest(&serde_json::json!({}), &digest));
    }
}
