//! Manifests we write: one image manifest per platform, and for several
//! platforms an index (OCI) or manifest list (Docker) naming exactly those.
//!
//! The JSON comes from structs, so fields always appear in the same order
//! (independent of serde_json's `preserve_order` feature), compact, with no
//! annotations: the same image pushed twice gets the same digest, and
//! nothing in an index can be taken for a buildx attestation.

use oci_spec::image::{ImageIndexBuilder, ImageManifestBuilder, PlatformBuilder};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

use crate::oci::document::{Descriptor, MediaType};
use crate::oci::Digest;

use crate::oci::platform::Platform;

use crate::oci::media_types::{DOCKER_CONFIG, DOCKER_LAYER, OCI_CONFIG, OCI_LAYER};
use crate::oci::media_types::{DOCKER_LIST, DOCKER_MANIFEST, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};

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

/// The image manifest for a config blob and layer blobs, each `(digest, size)`.
pub fn image_manifest(
    format: Format,
    config: (&Digest, u64),
    layers: &[(Digest, u64)],
) -> Assembled {
    let descriptor =
        |media_type: &str, (digest, size): (&Digest, u64)| descriptor(media_type, digest, size);
    let document = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(format.manifest_type())
        .config(descriptor(format.config_type(), config))
        .layers(
            layers
                .iter()
                .map(|(digest, size)| descriptor(format.layer_type(), (digest, *size)))
                .collect::<Vec<_>>(),
        )
        .build();
    finish(document, format.manifest_type())
}

/// The index (OCI) or manifest list (Docker) listing exactly `entries`, in
/// the order given.
pub fn index(format: Format, entries: &[IndexEntry]) -> Assembled {
    let manifests = entries.iter().map(|entry| {
        let mut listed = descriptor(&entry.media_type, &entry.digest, entry.size);
        let platform = PlatformBuilder::default()
            .architecture(entry.platform.architecture.as_str())
            .os(entry.platform.os.as_str());
        let platform = match &entry.platform.variant {
            Some(variant) => platform.variant(variant.as_str()).build(),
            None => platform.build(),
        };
        platform.map(|p| {
            listed.set_platform(Some(p));
            listed
        })
    });
    let document = manifests
        .collect::<Result<Vec<_>, _>>()
        .and_then(|manifests| {
            ImageIndexBuilder::default()
                .schema_version(2u32)
                .media_type(format.index_type())
                .manifests(manifests)
                .build()
        });
    finish(document, format.index_type())
}

/// The blob an artifact without a config of its own names as its config.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// The one layer of an artifact manifest: a file, a statement or an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLayer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
}

/// An OCI 1.1 artifact manifest: `artifactType`, the empty config, one
/// layer, and `subject`, the manifest it is about. Keys are written sorted
/// (annotations are maps), so the same artifact always has the same digest.
pub fn artifact_manifest(
    artifact_type: &str,
    layer: &ArtifactLayer,
    subject: &Descriptor,
    annotations: &BTreeMap<String, String>,
) -> Assembled {
    let empty = descriptor(
        OCI_EMPTY,
        &Digest::sha256_of(EMPTY_CONFIG),
        EMPTY_CONFIG.len() as u64,
    );
    let mut blob = descriptor(&layer.media_type, &layer.digest, layer.size);
    blob.set_annotations(map(&layer.annotations));
    let mut subject = subject.clone();
    subject.set_platform(None);
    subject.set_annotations(None);
    let document = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(OCI_MANIFEST)
        .artifact_type(artifact_type)
        .config(empty)
        .layers(vec![blob])
        .subject(subject)
        .build()
        .map(|mut m| {
            m.set_annotations(map(annotations));
            m
        });
    finish_sorted(
        document.ok().and_then(|d| serde_json::to_value(d).ok()),
        OCI_MANIFEST,
    )
}

/// The referrers index a registry without the referrers API keeps under the
/// `sha256-<hex>` tag (distribution spec 1.1, "Referrers Tag Schema"): an
/// OCI index listing `entries` as given. Entries are JSON values, not
/// descriptors, so another tool's entries are written back with every field
/// it gave them.
pub fn referrers_index(entries: &[serde_json::Value]) -> Assembled {
    let document = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    });
    finish_sorted(Some(document), OCI_INDEX)
}

fn map(annotations: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!annotations.is_empty()).then(|| annotations.clone().into_iter().collect())
}

/// Serializes `document` with every object's keys sorted.
fn finish_sorted(document: Option<serde_json::Value>, media_type: &'static str) -> Assembled {
    let mut document = document.unwrap_or_else(|| unreachable!());
    document.sort_all_objects();
    let bytes = serde_json::to_vec(&document).unwrap_or_else(|_| unreachable!());
    Assembled {
        digest: Digest::sha256_of(&bytes),
        bytes,
        media_type,
    }
}

/// A descriptor with no platform, annotations or URLs.
fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor::new(MediaType::from(media_type), size, digest.to_oci())
}

/// Serializes a document built with every required field set: `oci-spec`'s
/// builders fail only on a missing one, and these documents hold only
/// strings, integers and the crate's checked types, which always serialize.
fn finish<T: Serialize>(
    document: Result<T, oci_spec::OciSpecError>,
    media_type: &'static str,
) -> Assembled {
    let bytes = document
        .ok()
        .and_then(|d| serde_json::to_vec(&d).ok())
        .unwrap_or_else(|| unreachable!());
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

    fn d(text: &str) -> Digest {
        Digest::parse(text).unwrap()
    }

    #[test]
    fn docker_manifest_is_byte_exact() {
        let got = image_manifest(Format::Docker, (&d(A), 10), &[(d(B), 20)]);
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
        let parsed = crate::oci::document::Manifest::parse(text.as_bytes(), OCI_INDEX).unwrap();
        assert!(
            matches!(parsed, crate::oci::document::Manifest::Index(i) if i.manifests().len() == 2)
        );
    }

    #[test]
    fn same_input_same_digest() {
        let one = image_manifest(Format::Oci, (&d(A), 1), &[(d(B), 2), (d(A), 3)]);
        let two = image_manifest(Format::Oci, (&d(A), 1), &[(d(B), 2), (d(A), 3)]);
        assert_eq!(one, two);
        assert_ne!(
            one.digest,
            image_manifest(Format::Docker, (&d(A), 1), &[(d(B), 2), (d(A), 3)]).digest
        );
    }

    #[test]
    fn artifacts_name_their_subject_and_sort_their_keys() {
        let subject = descriptor(OCI_MANIFEST, &d(A), 7);
        let layer = ArtifactLayer {
            media_type: "application/vnd.in-toto+json".into(),
            digest: d(B),
            size: 9,
            annotations: [("in-toto.io/predicate-type".to_string(), "x".to_string())].into(),
        };
        let notes: BTreeMap<String, String> = [
            ("z".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string()),
        ]
        .into();
        let one = artifact_manifest("application/vnd.in-toto+json", &layer, &subject, &notes);
        let two = artifact_manifest("application/vnd.in-toto+json", &layer, &subject, &notes);
        assert_eq!(one, two);
        let text = String::from_utf8(one.bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"annotations":{"a":"2","z":"1"},"artifactType""#),
            "{text}"
        );
        assert!(
            text.contains(&format!(r#""subject":{{"digest":"{A}","mediaType""#)),
            "{text}"
        );
        assert!(text.contains(OCI_EMPTY), "{text}");
        let parsed = crate::oci::document::Manifest::parse(&one.bytes, OCI_MANIFEST).unwrap();
        let crate::oci::document::Manifest::Image(parsed) = parsed else {
            panic!("not an image manifest: {text}")
        };
        assert_eq!(
            parsed.subject().as_ref().map(|s| s.digest().to_string()),
            Some(A.to_string())
        );
        assert_eq!(
            parsed
                .artifact_type()
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("application/vnd.in-toto+json")
        );
    }

    #[test]
    fn referrers_indexes_keep_foreign_entries_whole() {
        let foreign = serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": A, "size": 3,
            "artifactType": "application/x-other", "x-extension": {"kept": true},
        });
        let index = referrers_index(&[foreign]);
        let back: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
        assert_eq!(back["manifests"][0]["x-extension"]["kept"], true);
        assert_eq!(back["mediaType"], OCI_INDEX);
        assert_eq!(index.media_type, OCI_INDEX);
    }
}
