//! Manifests we write: one image manifest per platform, and for several
//! platforms an index (OCI) or manifest list (Docker) naming exactly those.
//!
//! The JSON comes from structs, so fields always appear in the same order
//! (independent of serde_json's `preserve_order` feature), compact, with no
//! annotations: the same image pushed twice gets the same digest, and
//! nothing in an index can be taken for a buildx attestation.

use crate::oci::Digest;
use serde::Serialize;

use crate::oci::platform::Platform;

use crate::oci::media_types::{DOCKER_CONFIG, DOCKER_LAYER, OCI_CONFIG, OCI_LAYER};
use crate::oci::media_types::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// Which family of media types to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker image manifest v2 schema 2 and manifest list.
    Docker,
    /// OCI image manifest and index.
    Oci,
}

impl Format {
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_MANIFEST,
            Format::Oci => OCI_MANIFEST,
        }
    }

    pub fn index_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_LIST,
            Format::Oci => OCI_INDEX,
        }
    }

    pub fn config_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_CONFIG,
            Format::Oci => OCI_CONFIG,
        }
    }

    pub fn layer_type(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_LAYER,
            Format::Oci => OCI_LAYER,
        }
    }
}

/// A serialized manifest, ready to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub digest: Digest,
}

/// One platform's manifest as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub platform: Platform,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest<'a> {
    schema_version: u8,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index<'a> {
    schema_version: u8,
    media_type: &'a str,
    manifests: Vec<Descriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformJson<'a>>,
}

#[derive(Serialize)]
struct PlatformJson<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

/// The image manifest for a config blob and layer blobs, each `(digest, size)`.
pub fn image_manifest(format: Format, config: (&str, u64), layers: &[(&str, u64)]) -> Assembled {
    let document = ImageManifest {
        schema_version: 2,
        media_type: format.manifest_type(),
        config: Descriptor {
            media_type: format.config_type(),
            digest: config.0,
            size: config.1,
            platform: None,
        },
        layers: layers
            .iter()
            .map(|(digest, size)| Descriptor {
                media_type: format.layer_type(),
                digest,
                size: *size,
                platform: None,
            })
            .collect(),
    };
    finish(&document, format.manifest_type())
}

/// The index (OCI) or manifest list (Docker) listing exactly `entries`, in
/// the order given.
pub fn index(format: Format, entries: &[IndexEntry]) -> Assembled {
    let document = Index {
        schema_version: 2,
        media_type: format.index_type(),
        manifests: entries
            .iter()
            .map(|entry| Descriptor {
                media_type: &entry.media_type,
                digest: &entry.digest,
                size: entry.size,
                platform: Some(PlatformJson {
                    architecture: &entry.platform.architecture,
                    os: &entry.platform.os,
                    variant: entry.platform.variant.as_deref(),
                }),
            })
            .collect(),
    };
    finish(&document, format.index_type())
}

fn finish(document: &impl Serialize, media_type: &'static str) -> Assembled {
    // Serializing these structs (strings and integers only) cannot fail.
    let bytes = serde_json::to_vec(document).unwrap_or_else(|_| unreachable!());
    Assembled {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn docker_manifest_is_byte_exact() {
        let got = image_manifest(Format::Docker, (A, 10), &[(B, 20)]);
        let want = format!(
            concat!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","#,
                r#""config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":10}},"#,
                r#""layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","#,
                r#""digest":"{}","size":20}}]}}"#
            ),
            A, B
        );
        assert_eq!(String::from_utf8(got.bytes.clone()).unwrap(), want);
        assert_eq!(got.media_type, DOCKER_MANIFEST);
        assert_eq!(got.digest, Digest::sha256_of(want.as_bytes()));
    }

    #[test]
    fn oci_index_lists_exactly_the_entries_without_annotations() {
        let entry = |digest: &str, platform: &str| IndexEntry {
            digest: Digest::parse(digest).unwrap(),
            size: 5,
            media_type: OCI_MANIFEST.into(),
            platform: Platform::parse(platform).unwrap(),
        };
        let got = index(
            Format::Oci,
            &[entry(A, "linux/amd64"), entry(B, "linux/arm/v7")],
        );
        let text = String::from_utf8(got.bytes).unwrap();
        assert_eq!(got.media_type, OCI_INDEX);
        assert!(
            text.starts_with(concat!(
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","#,
                r#""manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json""#
            )),
            "{text}"
        );
        assert!(
            text.contains(r#""platform":{"architecture":"amd64","os":"linux"}}"#),
            "{text}"
        );
        assert!(
            text.contains(r#""platform":{"architecture":"arm","os":"linux","variant":"v7"}}"#),
            "{text}"
        );
        assert!(!text.contains("annotations"));
        let parsed = super::super::manifest::parse(text.as_bytes(), OCI_INDEX).unwrap();
        assert!(
            matches!(parsed, super::super::manifest::Manifest::Index { manifests } if manifests.len() == 2)
        );
    }

    #[test]
    fn same_input_same_digest() {
        let one = image_manifest(Format::Oci, (A, 1), &[(B, 2), (A, 3)]);
        let two = image_manifest(Format::Oci, (A, 1), &[(B, 2), (A, 3)]);
        assert_eq!(one, two);
        assert_ne!(
            one.digest,
            image_manifest(Format::Docker, (A, 1), &[(B, 2), (A, 3)]).digest
        );
    }
}
