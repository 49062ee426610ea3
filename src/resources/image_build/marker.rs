//! The private-state marker apply leaves: the digest the tags were left at,
//! every manifest the apply pushed, the ones it created (which destroy may
//! delete, and nothing else) and the referrers it created. Terraform keeps
//! it opaque and hands it back on plan, refresh and destroy.

use super::BuildModel;
use crate::oci::Digest;
use crate::publish::PushedEvidence;
use crate::value::Value;

/// Private state after a successful apply (see [`pushed_marker`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct PushedMarker {
    pushed_digest: Option<Digest>,
    /// Absent in markers written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pushed_manifests: Option<Vec<Digest>>,
    /// Of those, the ones this resource created: the registry did not hold
    /// them before its push. Absent in markers written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_manifests: Option<Vec<Digest>>,
    /// The referrers (provenance, attachments) the apply pushed and created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    evidence: Vec<PushedEvidence>,
}

impl PushedMarker {
    fn read(private: &[u8]) -> Option<PushedMarker> {
        serde_json::from_slice(private).ok()
    }
}

/// Private state after a successful apply: the digest the tags were left at,
/// every manifest the apply pushed (the index or single manifest first, then
/// each platform's), and the ones of those this resource created, which
/// destroy may delete and nothing else.
#[cfg(test)]
pub fn pushed_marker(digest: &Digest, platform_digests: &[&Digest], created: &[Digest]) -> Vec<u8> {
    marker_with_evidence(digest, platform_digests, created, &[])
}

/// [`pushed_marker`], and the referrers of `evidence` the apply created.
pub fn marker_with_evidence(
    digest: &Digest,
    platform_digests: &[&Digest],
    created: &[Digest],
    evidence: &[PushedEvidence],
) -> Vec<u8> {
    let mut manifests = vec![digest.clone()];
    manifests.extend(
        platform_digests
            .iter()
            .filter(|d| **d != digest)
            .map(|d| (*d).clone()),
    );
    let created = manifests
        .iter()
        .filter(|d| created.contains(d))
        .cloned()
        .collect();
    let marker = PushedMarker {
        pushed_digest: Some(digest.clone()),
        pushed_manifests: Some(manifests),
        created_manifests: Some(created),
        evidence: evidence.iter().filter(|e| e.created).cloned().collect(),
    };
    serde_json::to_vec(&marker).unwrap_or_default()
}

/// The manifests this resource owns after an apply that created `created`:
/// those, and those it owned before that the apply pushed again (an
/// identical rebuild finds its own earlier manifest in the registry).
pub fn owned_after(
    created: &[Digest],
    pushed: &[&Digest],
    prior: &Value,
    prior_private: &[u8],
) -> Vec<Digest> {
    let mut owned = created.to_vec();
    for d in owned_manifests(prior_private, prior).unwrap_or_default() {
        if pushed.contains(&&d) && !owned.contains(&d) {
            owned.push(d);
        }
    }
    owned
}

/// The referrers destroy may delete: those the last apply created.
pub fn owned_evidence(private: &[u8]) -> Vec<PushedEvidence> {
    PushedMarker::read(private).map_or_else(Vec::new, |m| m.evidence)
}

pub fn marker_digest(private: &[u8]) -> Option<Digest> {
    PushedMarker::read(private)?.pushed_digest
}

/// The manifests destroy may delete, from the marker of the last successful
/// apply: the ones it created. Markers written before `created_manifests`
/// existed say what apply pushed: `pushed_manifests`, or only
/// `pushed_digest` in the oldest, which the state's `platform_digests`
/// complete, as only apply writes those. `None` without a marker: nothing
/// is known to be ours.
pub fn owned_manifests(private: &[u8], state: &Value) -> Option<Vec<Digest>> {
    let marker = PushedMarker::read(private)?;
    if let Some(list) = marker.created_manifests {
        return Some(list);
    }
    if let Some(list) = marker.pushed_manifests {
        return Some(list);
    }
    let top = marker.pushed_digest?;
    let mut out = vec![top];
    // Written by apply from digests it computed; one that does not parse
    // was not written by us and is not ours to delete.
    let platform_digests = BuildModel::from_value(state)
        .platform_digests
        .to_string_map();
    for d in platform_digests
        .values()
        .filter_map(|d| Digest::parse(d).ok())
    {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Some(out)
}
