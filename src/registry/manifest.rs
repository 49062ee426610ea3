//! The four manifest shapes registries serve (Docker v2 schema 2 manifest and
//! manifest list, OCI image manifest and index) and image config blobs, read
//! into the few fields inspection needs.

use std::collections::HashMap;

use serde::Deserialize;

use crate::oci::platform::Platform;
use crate::oci::Digest;

use crate::oci::media_types::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// The annotation buildx puts on attestation manifests in an index.
pub const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub platform: Option<DescriptorPlatform>,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DescriptorPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Descriptor {
    /// buildx attestation manifests: marked by annotation, or by the
    /// `unknown/unknown` platform older tools used without one.
    pub fn is_attestation(&self) -> bool {
        let annotated = self
            .annotations
            .get(REFERENCE_TYPE_ANNOTATION)
            .map(String::as_str)
            == Some(ATTESTATION_MANIFEST);
        let unknown = self
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
        annotated || unknown
    }

    pub fn platform(&self) -> Option<Platform> {
        self.platform
            .as_ref()
            .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()))
    }
}

/// A parsed manifest of one of the four supported types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Index {
        manifests: Vec<Descriptor>,
    },
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

fn raw(bytes: &[u8]) -> Result<Raw, ManifestError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    match raw.schema_version {
        Some(2) | None => Ok(raw),
        Some(other) => Err(ManifestError::UnsupportedSchema(other)),
    }
}

/// The media type a manifest declares, or the OCI type its structure implies
/// (the OCI spec made `mediaType` optional before image-spec 1.0.2).
pub fn detect_media_type(bytes: &[u8]) -> Result<String, ManifestError> {
    let raw = raw(bytes)?;
    match raw.media_type.filter(|m| !m.is_empty()) {
        Some(declared)
            if [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]
                .contains(&declared.as_str()) =>
        {
            Ok(declared)
        }
        Some(other) => Err(ManifestError::UnsupportedMediaType(other)),
        None if raw.manifests.is_some() => Ok(OCI_INDEX.to_string()),
        None if raw.config.is_some() => Ok(OCI_MANIFEST.to_string()),
        None => Err(ManifestError::UnknownShape),
    }
}

/// Parses a manifest of media type `media_type`.
pub fn parse(bytes: &[u8], media_type: &str) -> Result<Manifest, ManifestError> {
    let raw = raw(bytes)?;
    match media_type {
        OCI_INDEX | DOCKER_LIST => {
            let manifests = raw.manifests.ok_or(ManifestError::UnknownShape)?;
            Ok(Manifest::Index { manifests })
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = raw.config.ok_or(ManifestError::UnknownShape)?;
            Ok(Manifest::Image {
                config,
                layers: raw.layers,
            })
        }
        other => Err(ManifestError::UnsupportedMediaType(other.to_string())),
    }
}

/// The platform fields of an image config blob.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ManifestError> {
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Config(e.to_string()))
    }

    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
