//! The OCI image layout that `docker save` writes on daemons using the
//! containerd image store (Docker 25+ also writes `manifest.json`, but an
//! archive with only `index.json` is valid too): follow `index.json` through
//! nested indexes to the image manifest, skipping attestation entries.
//!
//! Read with types of its own rather than [`crate::oci::document`]'s: a path
//! in the archive is made from each digest, so the digest is checked as this
//! crate's [`Digest`] (refused with its message before any path is built),
//! and nothing else of a descriptor is needed. Which entries are
//! attestations is the one rule of [`crate::oci::document::is_attestation`].

use serde::Deserialize;

use super::{bad, ArchiveIndex, ExportError, ImageRefs};
use crate::oci::document::is_attestation;
use crate::oci::{Digest, Platform};

#[derive(Deserialize)]
struct Descriptor {
    /// Checked as it is read: a malformed digest fails the whole document.
    digest: Digest,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<EntryPlatform>,
}

#[derive(Deserialize)]
struct EntryPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

#[derive(Deserialize)]
struct IndexOrManifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

const MAX_DEPTH: usize = 4;

pub(crate) fn read_layout(archive: &ArchiveIndex) -> Result<ImageRefs, ExportError> {
    let mut doc = read_json(archive, "index.json")?;
    for _ in 0..MAX_DEPTH {
        if let Some(config) = &doc.config {
            return Ok(ImageRefs {
                config: blob_path(&config.digest),
                layers: doc.layers.iter().map(|l| blob_path(&l.digest)).collect(),
            });
        }
        let next = doc
            .manifests
            .iter()
            .find(|d| !attestation(d))
            .ok_or_else(|| {
                bad(format!(
                    "index ({}) lists no image manifest",
                    doc.media_type
                ))
            })?;
        let rel = blob_path(&next.digest);
        doc = read_json(archive, &rel)?;
    }
    Err(bad("index.json nests indexes too deeply"))
}

fn attestation(d: &Descriptor) -> bool {
    let platform = d
        .platform
        .as_ref()
        .map(|p| Platform::new(&p.os, &p.architecture, None));
    is_attestation(&d.annotations, platform.as_ref())
}

/// Where the layout keeps a blob. A `Digest`'s grammar has no `/` and no
/// `..`, so the path stays inside `blobs/`.
fn blob_path(digest: &Digest) -> String {
    let (alg, hex) = digest.split_once(':').unwrap_or(("", digest));
    format!("blobs/{alg}/{hex}")
}

fn read_json(archive: &ArchiveIndex, rel: &str) -> Result<IndexOrManifest, ExportError> {
    serde_json::from_slice(archive.document(rel)?).map_err(|e| bad(format!("{rel}: {e}")))
}
