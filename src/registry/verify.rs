//! Proof after a push: read every tag back, as a pulling client would (all
//! manifest media types in `Accept`), and compare what the registry serves
//! with what was pushed, down to each platform's config blob.
//!
//! Digest equality alone is not enough: a tag whose digest matches can
//! still name an image whose config says another architecture, which is
//! the failure ECS reports as "wrong diff id" or a missing platform. And
//! when the digest differs, the caller needs to know how (an index with an
//! attestation, a missing platform), so the shape is checked first.

use std::collections::BTreeMap;

use super::client::RegistryClient;
use super::error::RegistryError;
use crate::oci::document::{ConfigPlatform, Described, Descriptor, Manifest};
use crate::oci::media_types::{DOCKER_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::oci::{Digest, Platform, Reference};

/// What stevedore pushed under the tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Digest of the manifest or index the tags should serve.
    pub digest: Digest,
    pub media_type: String,
    /// Per platform (`os/arch[/variant]`), the image manifest pushed for it.
    /// One entry and an image media type: the tags serve that manifest.
    pub platforms: BTreeMap<String, ExpectedManifest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedManifest {
    pub digest: Digest,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl ExpectedManifest {
    fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read tag {tag} of {repository} back from the registry: {source}")]
    Fetch {
        repository: String,
        tag: String,
        source: RegistryError,
    },
    #[error("tag {tag} serves {serves}, but stevedore pushed {pushed} ({reason})")]
    Differs {
        tag: String,
        serves: String,
        pushed: String,
        reason: String,
    },
    #[error(
        "tag {tag} serves manifest {digest} as {claimed}, but its config says {actual}: the image \
         inside is not built for the platform it was pushed as"
    )]
    ConfigDiffers {
        tag: String,
        digest: Digest,
        claimed: String,
        actual: String,
    },
}

/// Checks that every tag of `repo` in `tags` serves exactly `expected`.
pub async fn verify_pushed(
    client: &RegistryClient,
    repo: &Reference,
    tags: &[String],
    expected: &Expected,
) -> Result<(), VerifyError> {
    for tag in tags {
        verify_tag(client, repo, tag, expected).await?;
    }
    Ok(())
}

/// What a tag serves, summarised for comparison and for messages.
struct Served {
    digest: Digest,
    media_type: String,
    /// Index entries that are not attestations, or the config's platform
    /// of a single manifest (with its digest).
    platforms: Vec<(Platform, Digest)>,
    attestations: usize,
}

async fn verify_tag(
    client: &RegistryClient,
    repo: &Reference,
    tag: &str,
    expected: &Expected,
) -> Result<(), VerifyError> {
    let fetch_error = |source| VerifyError::Fetch {
        repository: repo.repository_reference(),
        tag: tag.to_string(),
        source,
    };
    let mut tagged = repo.clone();
    tagged.tag = Some(tag.to_string());
    tagged.digest = None;
    let fetched = client.get_manifest(&tagged).await.map_err(fetch_error)?;
    let parsed = parse(&fetched.bytes, &fetched.media_type).map_err(fetch_error)?;
    let served = match &parsed {
        Manifest::Index(index) => Served {
            digest: fetched.digest.clone(),
            media_type: fetched.media_type.clone(),
            platforms: index
                .manifests()
                .iter()
                .filter(|d| !d.is_attestation())
                .map(|d| {
                    (
                        d.image_platform().unwrap_or_else(unknown),
                        d.content_digest(),
                    )
                })
                .collect(),
            attestations: index
                .manifests()
                .iter()
                .filter(|d| d.is_attestation())
                .count(),
        },
        Manifest::Image(image) => {
            let platform = config_platform(client, repo, image.config())
                .await
                .map_err(fetch_error)?;
            Served {
                digest: fetched.digest.clone(),
                media_type: fetched.media_type.clone(),
                platforms: vec![(platform, fetched.digest.clone())],
                attestations: 0,
            }
        }
    };
    let differs = |reason: String| VerifyError::Differs {
        tag: tag.to_string(),
        serves: describe_served(&served),
        pushed: describe_expected(expected),
        reason,
    };
    let expected_index = is_index(&expected.media_type);
    let served_index = matches!(parsed, Manifest::Index(_));
    if served.attestations > 0 {
        return Err(differs(
            "the registry lists attestation manifests stevedore never pushed".into(),
        ));
    }
    if served_index != expected_index {
        return Err(differs(if served_index {
            "an index where one image manifest was expected".into()
        } else {
            "one image manifest where an index was expected".into()
        }));
    }
    if let Some(reason) = platform_difference(&served, expected) {
        return Err(differs(reason));
    }
    if served.media_type != expected.media_type {
        return Err(differs(format!(
            "media type {} instead of {}",
            served.media_type, expected.media_type
        )));
    }
    if served.digest != expected.digest {
        return Err(differs(
            "the tag points at a different manifest; was it pushed over since?".into(),
        ));
    }
    // Same digest as pushed, so the entries are ours; now check that each
    // platform's config agrees with the platform it was pushed as.
    for want in expected.platforms.values() {
        let actual = if served_index {
            let child = client
                .get_manifest(&repo.with_digest(&want.digest))
                .await
                .map_err(fetch_error)?;
            match parse(&child.bytes, &child.media_type).map_err(fetch_error)? {
                Manifest::Image(image) => config_platform(client, repo, image.config())
                    .await
                    .map_err(fetch_error)?,
                Manifest::Index(_) => {
                    return Err(differs(format!("entry {} is itself an index", want.digest)))
                }
            }
        } else {
            served.platforms[0].0.clone()
        };
        if !actual.matches(&want.platform()) {
            return Err(VerifyError::ConfigDiffers {
                tag: tag.to_string(),
                digest: want.digest.clone(),
                claimed: want.platform().to_string(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(())
}

/// Names missing and extra platforms, comparing after normalisation
/// (`linux/arm64` is `linux/arm64/v8`).
fn platform_difference(served: &Served, expected: &Expected) -> Option<String> {
    let wanted: Vec<Platform> = expected
        .platforms
        .values()
        .map(ExpectedManifest::platform)
        .collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|w| !served.platforms.iter().any(|(p, _)| p.matches(w)))
        .map(Platform::to_string)
        .collect();
    let extra: Vec<String> = served
        .platforms
        .iter()
        .filter(|(p, _)| !wanted.iter().any(|w| w.matches(p)))
        .map(|(p, _)| p.to_string())
        .collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("unexpected {}", extra.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn parse(bytes: &[u8], media_type: &str) -> Result<Manifest, RegistryError> {
    Manifest::parse(bytes, media_type).map_err(|e| RegistryError::InvalidManifest {
        detail: e.to_string(),
    })
}

async fn config_platform(
    client: &RegistryClient,
    repo: &Reference,
    config: &Descriptor,
) -> Result<Platform, RegistryError> {
    let digest = config.content_digest();
    let bytes = client.get_blob(repo, &digest).await?;
    let config = ConfigPlatform::parse(&bytes).map_err(|e| RegistryError::InvalidManifest {
        detail: format!("config {digest}: {e}"),
    })?;
    Ok(config.platform())
}

fn unknown() -> Platform {
    Platform::new("unknown", "unknown", None)
}

fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

fn kind(media_type: &str) -> &'static str {
    match media_type {
        OCI_INDEX => "an OCI index",
        DOCKER_LIST => "a Docker manifest list",
        OCI_MANIFEST => "OCI",
        _ => "Docker",
    }
}

fn describe_served(served: &Served) -> String {
    let names: Vec<String> = served
        .platforms
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    if is_index(&served.media_type) {
        let mut text = format!(
            "{} {} with {}",
            kind(&served.media_type),
            served.digest,
            list(&names)
        );
        if served.attestations > 0 {
            let plural = if served.attestations == 1 { "" } else { "s" };
            text.push_str(&format!(
                " and {} attestation manifest{plural}",
                served.attestations
            ));
        }
        text
    } else {
        format!(
            "a single {} {} manifest {}",
            names.join(", "),
            kind(&served.media_type),
            served.digest
        )
    }
}

fn describe_expected(expected: &Expected) -> String {
    let names: Vec<String> = expected
        .platforms
        .values()
        .map(|m| m.platform().to_string())
        .collect();
    if is_index(&expected.media_type) {
        format!(
            "{} {} with {}",
            kind(&expected.media_type),
            expected.digest,
            list(&names)
        )
    } else {
        format!(
            "a single {} {} manifest {}",
            names.join(", "),
            kind(&expected.media_type),
            expected.digest
        )
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no platforms".into()
    } else {
        names.join(", ")
    }
}
