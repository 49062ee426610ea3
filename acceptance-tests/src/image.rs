//! Crafting images in every shape the data source must understand, and remembering their
//! digests so tests can compare the provider's answers with the truth.

use serde_json::{json, Value};

use crate::layer::Layer;
use crate::media_types::*;
use crate::push::Uploader;
use crate::registry::Registry;

/// `os/architecture[/variant]`, as written in Terraform configs.
#[derive(Clone, Debug, PartialEq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Platform {
        let parts: Vec<&str> = s.split('/').collect();
        assert!(
            matches!(parts.len(), 2 | 3),
            "platform must be os/arch[/variant]: {s}"
        );
        Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        }
    }

    pub fn label(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// The `platform` object of an index entry.
    pub fn to_json(&self) -> Value {
        let mut p = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

/// Which family of media types an image uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Format {
    Docker,
    Oci,
}

impl Format {
    pub fn manifest(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_MANIFEST,
            Format::Oci => OCI_MANIFEST,
        }
    }
    pub fn index(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_LIST,
            Format::Oci => OCI_INDEX,
        }
    }
    pub fn config(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_CONFIG,
            Format::Oci => OCI_CONFIG,
        }
    }
    pub fn layer(self) -> &'static str {
        match self {
            Format::Docker => DOCKER_LAYER,
            Format::Oci => OCI_LAYER,
        }
    }
}

/// One platform's manifest as pushed.
#[derive(Clone, Debug)]
pub struct PlatformImage {
    pub platform: Platform,
    pub digest: String,
}

/// What a push left in the registry.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// `127.0.0.1:PORT/name`.
    pub repository: String,
    /// `repository:tag`, what a config's `image` names.
    pub reference: String,
    /// Digest of what the tag points to (the manifest, or the index).
    pub digest: String,
    pub media_type: String,
    pub is_index: bool,
    /// Real platforms, in push order; attestations are not here.
    pub images: Vec<PlatformImage>,
    /// Digests of the attestation manifests an index lists.
    pub attestations: Vec<String>,
    /// Bytes of the manifest or index the tag points to.
    pub size: usize,
}

/// One entry of an index made by [`Pusher::index_of`].
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    /// An image whose config and index entry both say this platform.
    Image(&'a str),
    /// An image whose index entry claims `claimed` but whose config says `actual`.
    Lying { claimed: &'a str, actual: &'a str },
    /// A buildx attestation manifest for the image before it.
    Attestation,
}

impl Pushed {
    /// The manifest digest for `platform` (`linux/arm64`); panics if the image has none.
    pub fn platform_digest(&self, platform: &str) -> &str {
        match self.images.iter().find(|i| i.platform.label() == platform) {
            Some(image) => &image.digest,
            None => panic!("{} was not pushed with {platform}", self.reference),
        }
    }

    /// `os/arch[/variant]` of each real platform.
    pub fn platforms(&self) -> Vec<String> {
        self.images.iter().map(|i| i.platform.label()).collect()
    }
}

/// Pushes crafted images into one registry.
pub struct Pusher<'r> {
    registry: &'r Registry,
    upload: Uploader<'r>,
}

impl<'r> Pusher<'r> {
    pub fn new(registry: &'r Registry) -> Pusher<'r> {
        Pusher {
            registry,
            upload: Uploader::new(registry),
        }
    }

    /// A single Docker v2 schema 2 manifest.
    pub fn docker_single(&self, name: &str, tag: &str, platform: &str) -> Pushed {
        self.single(name, tag, Format::Docker, platform)
    }

    /// A single OCI image manifest.
    pub fn oci_single(&self, name: &str, tag: &str, platform: &str) -> Pushed {
        self.single(name, tag, Format::Oci, platform)
    }

    /// A Docker manifest list with linux/amd64 and linux/arm64.
    pub fn docker_manifest_list(&self, name: &str, tag: &str) -> Pushed {
        self.index(
            name,
            tag,
            Format::Docker,
            &["linux/amd64", "linux/arm64"],
            &[],
        )
    }

    /// What buildx pushes by default: an OCI index of amd64 and arm64 plus one provenance
    /// attestation manifest (`unknown/unknown`) referring to the amd64 one.
    pub fn oci_index_with_attestation(&self, name: &str, tag: &str) -> Pushed {
        self.index(
            name,
            tag,
            Format::Oci,
            &["linux/amd64", "linux/arm64"],
            &["linux/amd64"],
        )
    }

    /// What Docker Desktop on Apple Silicon pushes: linux/arm64 plus its attestation, and
    /// no amd64 at all: the image ECS Fargate cannot pull.
    pub fn docker_desktop_arm64(&self, name: &str, tag: &str) -> Pushed {
        self.index(name, tag, Format::Oci, &["linux/arm64"], &["linux/arm64"])
    }

    /// An index (OCI) or manifest list (Docker) of `platforms`, plus one attestation
    /// manifest for each platform in `attested`.
    pub fn index(
        &self,
        name: &str,
        tag: &str,
        format: Format,
        platforms: &[&str],
        attested: &[&str],
    ) -> Pushed {
        let mut entries = Vec::new();
        let mut images = Vec::new();
        for label in platforms {
            let platform = Platform::parse(label);
            let (digest, bytes) = self.platform_manifest(name, format, &platform);
            entries.push(descriptor(
                format.manifest(),
                &digest,
                bytes.len(),
                platform.to_json(),
            ));
            images.push(PlatformImage { platform, digest });
        }
        let mut attestations = Vec::new();
        for label in attested {
            let subject = images
                .iter()
                .find(|i| i.platform.label() == *label)
                .expect("attested");
            let (digest, entry) = self.attestation(name, &subject.digest);
            entries.push(entry);
            attestations.push(digest);
        }
        self.push_index_document(name, tag, format, entries, images, attestations)
    }

    /// An index (OCI) or manifest list (Docker) of `entries`, in that order,
    /// under `tag`; each image is pushed by digest first.
    pub fn index_of(&self, name: &str, tag: &str, format: Format, entries: &[Entry]) -> Pushed {
        let mut descriptors = Vec::new();
        let mut images: Vec<PlatformImage> = Vec::new();
        let mut attestations = Vec::new();
        for entry in entries {
            match *entry {
                Entry::Image(label) | Entry::Lying { claimed: label, .. } => {
                    let actual = match *entry {
                        Entry::Lying { actual, .. } => actual,
                        _ => label,
                    };
                    let (digest, bytes) =
                        self.platform_manifest(name, format, &Platform::parse(actual));
                    let claimed = Platform::parse(label);
                    descriptors.push(descriptor(
                        format.manifest(),
                        &digest,
                        bytes.len(),
                        claimed.to_json(),
                    ));
                    images.push(PlatformImage {
                        platform: claimed,
                        digest,
                    });
                }
                Entry::Attestation => {
                    let subject = images.last().map(|i| i.digest.clone()).unwrap_or_default();
                    let (digest, descriptor) = self.attestation(name, &subject);
                    descriptors.push(descriptor);
                    attestations.push(digest);
                }
            }
        }
        self.push_index_document(name, tag, format, descriptors, images, attestations)
    }

    /// Puts the index listing `descriptors` under `tag`.
    fn push_index_document(
        &self,
        name: &str,
        tag: &str,
        format: Format,
        descriptors: Vec<Value>,
        images: Vec<PlatformImage>,
        attestations: Vec<String>,
    ) -> Pushed {
        let body = json!({
            "schemaVersion": 2,
            "mediaType": format.index(),
            "manifests": descriptors,
        });
        let bytes = serde_json::to_vec_pretty(&body).unwrap();
        let digest = self.upload.manifest(name, tag, format.index(), &bytes);
        self.pushed(
            name,
            tag,
            (digest, bytes.len()),
            format.index(),
            true,
            images,
            attestations,
        )
    }

    /// One image manifest for `platform`, pushed by digest with no tag;
    /// `reference` is then `repository@digest`.
    pub fn untagged(&self, name: &str, format: Format, label: &str) -> Pushed {
        let platform = Platform::parse(label);
        let (digest, bytes) = self.platform_manifest(name, format, &platform);
        let images = vec![PlatformImage {
            platform,
            digest: digest.clone(),
        }];
        let mut pushed = self.pushed(
            name,
            "",
            (digest, bytes.len()),
            format.manifest(),
            false,
            images,
            vec![],
        );
        pushed.reference = format!("{}@{}", pushed.repository, pushed.digest);
        pushed
    }

    /// One image manifest for `platform` under `tag`.
    pub fn single_image(&self, name: &str, tag: &str, format: Format, label: &str) -> Pushed {
        self.single(name, tag, format, label)
    }

    fn single(&self, name: &str, tag: &str, format: Format, label: &str) -> Pushed {
        let platform = Platform::parse(label);
        let (_, bytes) = self.platform_manifest(name, format, &platform);
        let digest = self.upload.manifest(name, tag, format.manifest(), &bytes);
        let images = vec![PlatformImage {
            platform,
            digest: digest.clone(),
        }];
        self.pushed(
            name,
            tag,
            (digest, bytes.len()),
            format.manifest(),
            false,
            images,
            vec![],
        )
    }

    /// Uploads a layer and config for `platform`, and the manifest by digest; returns the
    /// manifest's digest and bytes.
    fn platform_manifest(&self, name: &str, format: Format, p: &Platform) -> (String, Vec<u8>) {
        let layer = Layer::with_file("platform.txt", format!("{name} {}\n", p.label()).as_bytes());
        let mut config = p.to_json();
        config["rootfs"] = json!({ "type": "layers", "diff_ids": [layer.diff_id] });
        config["config"] = json!({});
        self.image_manifest(name, format, &config, &layer, format.layer(), json!(null))
    }

    /// A buildx-style provenance attestation for the manifest `subject`; returns its digest
    /// and its index entry.
    fn attestation(&self, name: &str, subject: &str) -> (String, Value) {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{ "name": name, "digest": { "sha256": subject.trim_start_matches("sha256:") } }],
            "predicate": {},
        });
        let layer = Layer::raw(serde_json::to_vec(&statement).unwrap());
        let config = json!({
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer.diff_id] },
        });
        let annotations =
            json!({ "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" });
        let (digest, bytes) =
            self.image_manifest(name, Format::Oci, &config, &layer, IN_TOTO, annotations);
        let mut entry = descriptor(
            Format::Oci.manifest(),
            &digest,
            bytes.len(),
            json!({ "architecture": "unknown", "os": "unknown" }),
        );
        entry["annotations"] = json!({
            "vnd.docker.reference.digest": subject,
            "vnd.docker.reference.type": "attestation-manifest",
        });
        (digest, entry)
    }

    fn image_manifest(
        &self,
        name: &str,
        format: Format,
        config: &Value,
        layer: &Layer,
        layer_type: &str,
        layer_annotations: Value,
    ) -> (String, Vec<u8>) {
        let config_bytes = serde_json::to_vec(config).unwrap();
        let config_digest = self.upload.blob(name, &config_bytes);
        let layer_digest = self.upload.blob(name, &layer.gz);
        let mut layer_desc = json!({
            "mediaType": layer_type, "digest": layer_digest, "size": layer.gz.len(),
        });
        if !layer_annotations.is_null() {
            layer_desc["annotations"] = layer_annotations;
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": format.manifest(),
            "config": { "mediaType": format.config(), "digest": config_digest, "size": config_bytes.len() },
            "layers": [layer_desc],
        });
        let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
        let digest = crate::sha256_digest(&bytes);
        self.upload
            .manifest(name, &digest, format.manifest(), &bytes);
        (digest, bytes)
    }

    #[allow(clippy::too_many_arguments)]
    fn pushed(
        &self,
        name: &str,
        tag: &str,
        (digest, size): (String, usize),
        media_type: &str,
        is_index: bool,
        images: Vec<PlatformImage>,
        attestations: Vec<String>,
    ) -> Pushed {
        let repository = format!("{}/{name}", self.registry.address);
        Pushed {
            reference: format!("{repository}:{tag}"),
            repository,
            digest,
            media_type: media_type.to_string(),
            is_index,
            images,
            attestations,
            size,
        }
    }
}

/// An index entry.
pub fn descriptor(media_type: &str, digest: &str, size: usize, platform: Value) -> Value {
    json!({ "mediaType": media_type, "digest": digest, "size": size, "platform": platform })
}
