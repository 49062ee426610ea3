//! The documents an image is made of, read: descriptors, image manifests and
//! indexes as the `oci-spec` crate models them (Docker's v2 manifest and
//! manifest list have the same JSON shape under their own media types), with
//! the OCI 1.1 fields referrers need (`subject`, `artifactType`,
//! `annotations`). On top, the few rules this project holds them to: which
//! media types it reads, what counts as an attestation entry, and how a
//! descriptor's digest and platform read in this crate's own types.
//!
//! Parsed documents are for reading only. What is pushed, verified or kept
//! is the bytes as written or received, never a re-serialisation: a registry
//! addresses bytes, and serde is free to order keys differently.
//!
//! One type is our own, measured against `oci-spec`: [`ConfigPlatform`].
//! `oci_spec::image::ImageConfiguration` requires `rootfs` with its `type`
//! and `diff_ids` and parses every field of `config` and `history`, so a
//! config it finds fault with elsewhere fails the platform check that reads
//! three fields (`{"architecture":"arm","os":"linux","variant":"v7",
//! "rootfs":{}}` is one). Inspection reads configs of any image, so it reads
//! only what it checks.

use std::collections::HashMap;

pub use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::media_types::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use super::platform::Platform;
use super::Digest;

/// The annotation buildx puts on attestation manifests in an index.
pub const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the manifest is not valid JSON: {0}")]
    Json(String),
    #[error(
        "unsupported manifest media type {0:?}; expected an OCI or Docker v2 manifest or index"
    )]
    UnsupportedMediaType(String),
    #[error("unsupported schemaVersion {0}; only version 2 manifests are supported")]
    UnsupportedSchema(i64),
    #[error(
        "the document is neither an image manifest nor an index (no \"config\" or \"manifests\")"
    )]
    UnknownShape,
    #[error("the image config is not valid JSON: {0}")]
    Config(String),
}

/// A parsed manifest of one of the four supported media types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Index(Box<ImageIndex>),
    Image(Box<ImageManifest>),
}

impl Manifest {
    /// Parses a manifest of media type `media_type`.
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<Manifest, DocumentError> {
        let shape = probe(bytes)?;
        let json = |e: serde_json::Error| DocumentError::Json(e.to_string());
        match media_type {
            OCI_INDEX | DOCKER_LIST => {
                if shape.manifests.is_none() {
                    return Err(DocumentError::UnknownShape);
                }
                serde_json::from_slice(bytes)
                    .map(|index| Manifest::Index(Box::new(index)))
                    .map_err(json)
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                if shape.config.is_none() {
                    return Err(DocumentError::UnknownShape);
                }
                serde_json::from_slice(bytes)
                    .map(|image| Manifest::Image(Box::new(image)))
                    .map_err(json)
            }
            other => Err(DocumentError::UnsupportedMediaType(other.to_string())),
        }
    }
}

/// What every manifest shape has in common, read before its type is known.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

fn probe(bytes: &[u8]) -> Result<Probe, DocumentError> {
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| DocumentError::Json(e.to_string()))?;
    match probe.schema_version {
        Some(2) | None => Ok(probe),
        Some(other) => Err(DocumentError::UnsupportedSchema(other)),
    }
}

/// The media type a manifest declares, or the OCI type its structure implies
/// (the OCI spec made `mediaType` optional before image-spec 1.0.2).
pub fn detect_media_type(bytes: &[u8]) -> Result<String, DocumentError> {
    let probe = probe(bytes)?;
    match probe.media_type.filter(|m| !m.is_empty()) {
        Some(declared)
            if [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]
                .contains(&declared.as_str()) =>
        {
            Ok(declared)
        }
        Some(other) => Err(DocumentError::UnsupportedMediaType(other)),
        None if probe.manifests.is_some() => Ok(OCI_INDEX.to_string()),
        None if probe.config.is_some() => Ok(OCI_MANIFEST.to_string()),
        None => Err(DocumentError::UnknownShape),
    }
}

/// How this project reads a descriptor.
pub trait Described {
    /// The digest, as this crate's [`Digest`].
    fn content_digest(&self) -> Digest;
    /// The platform an index entry claims, in this crate's [`Platform`].
    fn image_platform(&self) -> Option<Platform>;
    /// An attestation entry of an index (see [`is_attestation`]).
    fn is_attestation(&self) -> bool;
    /// The media type as text.
    fn media_type_text(&self) -> String;
}

impl Described for Descriptor {
    fn content_digest(&self) -> Digest {
        Digest::from(self.digest())
    }

    fn image_platform(&self) -> Option<Platform> {
        self.platform().as_ref().map(|p| {
            let variant = p.variant().as_deref();
            Platform::new(&p.os().to_string(), &p.architecture().to_string(), variant)
        })
    }

    fn is_attestation(&self) -> bool {
        let none = HashMap::new();
        let annotations = self.annotations().as_ref().unwrap_or(&none);
        is_attestation(annotations, self.image_platform().as_ref())
    }

    fn media_type_text(&self) -> String {
        self.media_type().to_string()
    }
}

/// The rule for an attestation entry of an index, for the whole crate:
/// marked with buildx's annotation, or listed as `unknown/unknown` as older
/// tools did without one.
pub fn is_attestation<'a, A>(annotations: &'a A, platform: Option<&Platform>) -> bool
where
    &'a A: IntoIterator<Item = (&'a String, &'a String)>,
{
    let annotated = annotations
        .into_iter()
        .any(|(k, v)| k == REFERENCE_TYPE_ANNOTATION && v == ATTESTATION_MANIFEST);
    let unknown = platform.is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
    annotated || unknown
}

/// The platform fields of an image config blob (see the module comment for
/// why not `oci_spec`'s `ImageConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfigPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl ConfigPlatform {
    pub fn parse(bytes: &[u8]) -> Result<ConfigPlatform, DocumentError> {
        serde_json::from_slice(bytes).map_err(|e| DocumentError::Config(e.to_string()))
    }

    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
