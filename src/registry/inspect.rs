//! What a reference really serves: index or single manifest, its platforms
//! (attestations counted apart), and for the platform asked the
//! platform-specific digest with os/arch/variant read from the image config,
//! because the config is what the runtime unpacks, not the index's claim.
//! Used by the image data source and the ECS image check alike.

use super::client::RegistryClient;
use super::error::RegistryError;
use crate::oci::document::{ConfigPlatform, Described, Descriptor, Manifest};
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::oci::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Digest of what the reference points to (index or manifest).
    pub digest: Digest,
    pub media_type: String,
    pub is_index: bool,
    /// `os/arch[/variant]` of the index entries without attestations, or of
    /// a single manifest's config.
    pub platforms: Vec<String>,
    pub attestation_count: i64,
    pub platform_digest: Option<Digest>,
    /// `registry/repository@platform_digest`.
    pub image_uri: Option<String>,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{}", platform_missing_message(image, wanted, provided, *attestations))]
    PlatformMissing {
        image: String,
        wanted: String,
        provided: Vec<String>,
        attestations: i64,
    },
    #[error(
        "image {image}: the index entry {digest} claims {claimed}, but its config says {actual}; \
         the image was assembled wrongly and will not run as {claimed}"
    )]
    ConfigMismatch {
        image: String,
        digest: Digest,
        claimed: String,
        actual: String,
    },
    #[error("image {image}: {detail}")]
    InvalidManifest { image: String, detail: String },
}

fn platform_missing_message(
    image: &str,
    wanted: &str,
    provided: &[String],
    attestations: i64,
) -> String {
    let provides = if provided.is_empty() {
        "no platform".to_string()
    } else {
        provided.join(", ")
    };
    let plus = match attestations {
        0 => String::new(),
        1 => " (plus 1 attestation manifest)".to_string(),
        n => format!(" (plus {n} attestation manifests)"),
    };
    format!("image {image} does not provide {wanted}; it provides {provides}{plus}")
}

/// Inspects `reference`; with `platform`, requires and resolves it.
pub async fn inspect(
    client: &RegistryClient,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<Inspection, InspectError> {
    let image = reference.to_string();
    let invalid = |detail: String| InspectError::InvalidManifest {
        image: image.clone(),
        detail,
    };
    let top = client.get_manifest_cached(reference).await?;
    let parsed =
        Manifest::parse(&top.bytes, &top.media_type).map_err(|e| invalid(e.to_string()))?;
    let mut result = Inspection {
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
        is_index: matches!(parsed, Manifest::Index(_)),
        platforms: Vec::new(),
        attestation_count: 0,
        platform_digest: None,
        image_uri: None,
        os: None,
        architecture: None,
        variant: None,
    };
    match parsed {
        Manifest::Image(manifest) => {
            let config = read_config(client, reference, manifest.config()).await?;
            let actual = config.platform();
            result.platforms = vec![actual.to_string()];
            if let Some(wanted) = platform {
                if !wanted.matches(&actual) {
                    return Err(missing(&image, wanted, result.platforms, 0));
                }
            }
            choose(&mut result, reference, &top.digest, &config);
        }
        Manifest::Index(index) => {
            let (attestations, images): (Vec<&Descriptor>, Vec<&Descriptor>) =
                index.manifests().iter().partition(|d| d.is_attestation());
            result.attestation_count = attestations.len() as i64;
            result.platforms = images
                .iter()
                .filter_map(|d| d.image_platform())
                .map(|p| p.to_string())
                .collect();
            let chosen = match platform {
                Some(wanted) => {
                    let found = images
                        .iter()
                        .find(|d| d.image_platform().is_some_and(|p| wanted.matches(&p)));
                    match found {
                        Some(entry) => Some(*entry),
                        None => {
                            let provided = result.platforms.clone();
                            return Err(missing(
                                &image,
                                wanted,
                                provided,
                                result.attestation_count,
                            ));
                        }
                    }
                }
                None if images.len() == 1 => images.first().copied(),
                None => None,
            };
            if let Some(entry) = chosen {
                let config = read_entry_config(client, reference, entry).await?;
                if let Some(claimed) = entry.image_platform() {
                    if !claimed.matches(&config.platform()) {
                        return Err(InspectError::ConfigMismatch {
                            image,
                            digest: entry.content_digest(),
                            claimed: claimed.to_string(),
                            actual: config.platform().to_string(),
                        });
                    }
                }
                choose(&mut result, reference, &entry.content_digest(), &config);
            }
        }
    }
    Ok(result)
}

fn missing(
    image: &str,
    wanted: &Platform,
    provided: Vec<String>,
    attestations: i64,
) -> InspectError {
    InspectError::PlatformMissing {
        image: image.into(),
        wanted: wanted.to_string(),
        provided,
        attestations,
    }
}

fn choose(
    result: &mut Inspection,
    reference: &Reference,
    digest: &Digest,
    config: &ConfigPlatform,
) {
    result.platform_digest = Some(digest.clone());
    result.image_uri = Some(format!("{}@{digest}", reference.repository_reference()));
    result.os = Some(config.os.clone()).filter(|s| !s.is_empty());
    result.architecture = Some(config.architecture.clone()).filter(|s| !s.is_empty());
    result.variant = config.variant.clone().filter(|s| !s.is_empty());
}

/// Fetches the manifest an index entry points to and its config.
async fn read_entry_config(
    client: &RegistryClient,
    reference: &Reference,
    entry: &Descriptor,
) -> Result<ConfigPlatform, InspectError> {
    let child_ref = reference.with_digest(&entry.content_digest());
    let image = child_ref.to_string();
    let child = client.get_child_manifest(&child_ref).await?;
    let parsed = Manifest::parse(&child.bytes, &child.media_type).map_err(|e| {
        InspectError::InvalidManifest {
            image: image.clone(),
            detail: e.to_string(),
        }
    })?;
    match parsed {
        Manifest::Image(image) => read_config(client, reference, image.config()).await,
        Manifest::Index(_) => Err(InspectError::InvalidManifest {
            image,
            detail: "an index entry points to another index; nested indexes are not supported"
                .into(),
        }),
    }
}

async fn read_config(
    client: &RegistryClient,
    reference: &Reference,
    config: &Descriptor,
) -> Result<ConfigPlatform, InspectError> {
    let digest = config.content_digest();
    let bytes = client.get_blob(reference, &digest).await?;
    ConfigPlatform::parse(&bytes).map_err(|e| InspectError::InvalidManifest {
        image: reference.to_string(),
        detail: format!("config blob {digest}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_missing_reads_like_the_spec() {
        let one = vec!["linux/arm64".to_string()];
        assert_eq!(
            platform_missing_message("127.0.0.1:5000/web:latest", "linux/amd64", &one, 1),
            "image 127.0.0.1:5000/web:latest does not provide linux/amd64; it provides linux/arm64 \
             (plus 1 attestation manifest)"
        );
        let two = vec!["linux/arm64".to_string(), "linux/arm/v7".to_string()];
        assert_eq!(
            platform_missing_message("r/w:1", "linux/amd64", &two, 2),
            "image r/w:1 does not provide linux/amd64; it provides linux/arm64, linux/arm/v7 (plus \
             2 attestation manifests)"
        );
        assert_eq!(
            platform_missing_message("r/w:1", "linux/amd64", &one, 0),
            "image r/w:1 does not provide linux/amd64; it provides linux/arm64"
        );
        assert_eq!(
            platform_missing_message("r/w:1", "linux/amd64", &[], 0),
            "image r/w:1 does not provide linux/amd64; it provides no platform"
        );
    }
}
