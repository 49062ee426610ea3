//! Destroy with `keep_remotely = false`: delete the manifests an apply
//! pushed, and only those that no tag outside the resource's own still
//! names, directly or through an index it points at.
//!
//! Deleting a manifest removes every tag pointing at it, so a tag someone
//! else made (a release tag, another stack's `latest`) must protect it; and
//! a digest someone else pushed is never ours to delete, even when refresh
//! wrote it into state after they moved one of our tags.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::PushedEvidence;
use crate::oci::document::{Described, Manifest};
use crate::oci::{Digest, Reference};
use crate::registry::push::{Deleted, TagList};
use crate::registry::{RegistryClient, RegistryError};

/// A tag and the digests it keeps alive.
type TagTargets = (String, Vec<Digest>);

/// Foreign tags resolved at once while looking for references.
const PARALLEL_LOOKUPS: usize = 8;

/// What destroy did with each manifest it pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub deleted: Vec<Digest>,
    /// Already gone.
    pub absent: Vec<Digest>,
    /// Ours, but named by tags outside the resource's `tags`: left in place.
    pub kept: BTreeMap<Digest, Vec<String>>,
    /// The registry refused DELETE with this status (405, 501); nothing
    /// after that point was tried.
    pub unsupported: Option<u16>,
}

/// Deletes the manifests in `pushed` (index or single manifest first) from
/// `repo`, except those a tag outside `own_tags` names. Any failure to list
/// or read the other tags is an error before anything is deleted: deleting
/// blind could take someone else's image with it.
pub async fn delete_pushed(
    registry: &RegistryClient,
    repo: &Reference,
    pushed: &[Digest],
    own_tags: &[String],
    cancel: CancellationToken,
) -> Result<DeleteOutcome, RegistryError> {
    let pusher = registry.pusher(cancel);
    let foreign_tags = match pusher.list_tags(repo).await? {
        TagList::Tags(tags) => tags
            .into_iter()
            .filter(|t| !own_tags.contains(t))
            .collect::<Vec<_>>(),
        TagList::NoRepository => Vec::new(),
    };
    let referenced = references_of(registry, repo, &foreign_tags).await?;
    let kept = protected(pushed, &referenced);
    let mut outcome = DeleteOutcome {
        kept,
        ..DeleteOutcome::default()
    };
    for digest in pushed.iter().filter(|d| !outcome.kept.contains_key(*d)) {
        match pusher.delete_manifest(repo, digest).await? {
            Deleted::Deleted => outcome.deleted.push(digest.clone()),
            Deleted::Absent => outcome.absent.push(digest.clone()),
            Deleted::Unsupported { status } => {
                outcome.unsupported = Some(status);
                break;
            }
        }
    }
    Ok(outcome)
}

/// Deletes the referrers in `evidence` from `repo`, each first taken out of
/// its subject's fallback index (so that index no longer names it, and no
/// longer keeps it alive for [`delete_pushed`]). Referrers have no tags of
/// their own: nothing else can name them. Returns those deleted.
pub async fn delete_evidence(
    registry: &RegistryClient,
    repo: &Reference,
    evidence: &[PushedEvidence],
    cancel: CancellationToken,
) -> Result<Vec<Digest>, RegistryError> {
    let pusher = registry.pusher(cancel);
    let mut deleted = Vec::new();
    for referrer in evidence {
        if referrer.in_fallback_index {
            pusher
                .unlist_referrer(repo, &referrer.subject, &referrer.digest)
                .await?;
        }
        match pusher.delete_manifest(repo, &referrer.digest).await? {
            Deleted::Deleted => deleted.push(referrer.digest.clone()),
            Deleted::Absent => {}
            Deleted::Unsupported { .. } => break,
        }
    }
    Ok(deleted)
}

/// For each tag, the digests it keeps alive: the manifest it names and,
/// when that is an index, every manifest the index lists. Tags that vanish
/// while we look are skipped.
async fn references_of(
    registry: &RegistryClient,
    repo: &Reference,
    tags: &[String],
) -> Result<Vec<TagTargets>, RegistryError> {
    // NOTE: the futures are collected first; a closure inside the stream
    // type trips rustc's higher-ranked lifetime check for `Send` futures.
    let lookups: Vec<_> = tags
        .iter()
        .map(|tag| {
            let mut tagged = repo.clone();
            tagged.tag = Some(tag.clone());
            tagged.digest = None;
            lookup(registry, tagged, tag.clone())
        })
        .collect();
    let found: Vec<Result<Option<TagTargets>, RegistryError>> = futures::stream::iter(lookups)
        .buffer_unordered(PARALLEL_LOOKUPS)
        .collect()
        .await;
    let mut out = Vec::new();
    for item in found {
        if let Some(pair) = item? {
            out.push(pair);
        }
    }
    Ok(out)
}

/// What one tag names: its manifest and, for an index, the manifests listed.
async fn lookup(
    registry: &RegistryClient,
    tagged: Reference,
    tag: String,
) -> Result<Option<TagTargets>, RegistryError> {
    match registry.get_manifest(&tagged).await {
        Ok(fetched) => {
            let mut digests = vec![fetched.digest.clone()];
            if let Ok(Manifest::Index(index)) = Manifest::parse(&fetched.bytes, &fetched.media_type)
            {
                digests.extend(index.manifests().iter().map(Described::content_digest));
            }
            Ok(Some((tag, digests)))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Which of `pushed` a foreign tag keeps alive, with the tags that do.
pub fn protected(pushed: &[Digest], referenced: &[TagTargets]) -> BTreeMap<Digest, Vec<String>> {
    let mut kept: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
    for (tag, digests) in referenced {
        for digest in digests.iter().filter(|d| pushed.contains(d)) {
            kept.entry(digest.clone()).or_default().insert(tag.clone());
        }
    }
    kept.into_iter()
        .map(|(d, tags)| (d, tags.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// A digest standing for the manifest called `name`.
    fn d(name: &str) -> Digest {
        Digest::sha256_of(name.as_bytes())
    }

    fn ds(names: &[&str]) -> Vec<Digest> {
        names.iter().map(|n| d(n)).collect()
    }

    #[test]
    fn a_foreign_tag_protects_what_it_names_and_what_its_index_lists() {
        let pushed = ds(&["index", "amd64", "arm64"]);
        let referenced = vec![
            ("release".to_string(), ds(&["other", "arm64"])),
            ("pinned".to_string(), ds(&["amd64"])),
            ("also".to_string(), ds(&["amd64"])),
            ("unrelated".to_string(), ds(&["zzz"])),
        ];
        let kept = protected(&pushed, &referenced);
        assert_eq!(
            kept,
            BTreeMap::from([
                (d("amd64"), s(&["also", "pinned"])),
                (d("arm64"), s(&["release"])),
            ])
        );
    }

    #[test]
    fn nothing_foreign_protects_nothing() {
        assert!(protected(&ds(&["a"]), &[]).is_empty());
    }
}
