//! One index over images built elsewhere (`stevedore_image_index`: a CI matrix whose jobs
//! each build one platform, or builds in other states). Each source gives its platform
//! manifests, read from wherever it lives (an index's platform entries, attestation entries
//! dropped); they must be one family of media types, each platform once, and are sorted by
//! os/architecture/variant so the same sources always give the same digest. Publishing puts
//! every blob into the target repository (mounted on the same registry, else copied as a
//! stream), pushes each manifest as the very same bytes, then tags and verifies exactly as a
//! build does ([`push_tags`], `verify_pushed`): where a manifest came from is no concern of
//! theirs.

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;

use super::push::{push_image_manifest, push_tags, PushStats, PushedManifest};
use super::{expected, published, settled, Failed, Ledger, PublishError, Published};
use crate::oci::document::{ConfigPlatform, Described, Manifest};
use crate::oci::media_types::{DOCKER_MANIFEST, OCI_MANIFEST};
use crate::oci::{Digest, Platform, Reference};
use crate::registry::assemble::{index, Assembled, Format, IndexEntry};
use crate::registry::{verify_pushed, RegistryClient, RegistryError};

/// An image config is a few KiB; more than this is not read for its platform.
const MAX_CONFIG: u64 = 4 * 1024 * 1024;

/// One platform manifest of a source, as read.
#[derive(Debug, Clone)]
pub struct SourceManifest {
    /// The source as the configuration gives it.
    pub source: String,
    /// The repository it is read from (no tag or digest).
    pub repository: Reference,
    pub platform: Platform,
    pub digest: Digest,
    pub bytes: Vec<u8>,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

/// Every platform manifest of the sources, sorted, and their one family.
#[derive(Debug, Clone)]
pub struct Joined {
    pub format: Format,
    pub manifests: Vec<SourceManifest>,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("reading source {source_text}: {error}")]
    Read {
        source_text: String,
        #[source]
        error: RegistryError,
    },
    #[error("source {source_text}: {detail}")]
    Unusable { source_text: String, detail: String },
    #[error("{platform} comes from two sources, {first} and {second}; keep one of them")]
    SamePlatform {
        platform: String,
        first: String,
        second: String,
    },
    #[error(
        "the sources mix media types: {docker} is a Docker image ({DOCKER_MANIFEST}) and {oci} \
         an OCI image ({OCI_MANIFEST}); build every source with the same manifest_format"
    )]
    MixedMediaTypes { docker: String, oci: String },
}

impl Joined {
    /// What the tags will point to (the manifest for one platform, else the index), and its
    /// media type: computed from what was read, nothing pushed.
    pub fn target(&self) -> (Digest, &'static str) {
        match self.manifests.as_slice() {
            [only] => (only.digest.clone(), self.format.manifest_type()),
            many => {
                let assembled = index(self.format, &entries(self.format, many));
                (assembled.digest, assembled.media_type)
            }
        }
    }
}

fn entries(format: Format, manifests: &[SourceManifest]) -> Vec<IndexEntry> {
    manifests
        .iter()
        .map(|m| IndexEntry {
            digest: m.digest.clone(),
            size: m.bytes.len() as u64,
            media_type: format.manifest_type().to_string(),
            platform: m.platform.clone(),
        })
        .collect()
}

/// Reads every source (all at once) and checks they join.
pub async fn resolve(
    registry: &RegistryClient,
    sources: &[(String, Reference)],
) -> Result<Joined, JoinError> {
    let read = sources
        .iter()
        .map(|(text, reference)| read_source(registry, text, reference));
    let mut all: Vec<(SourceManifest, Format)> = futures::future::try_join_all(read)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let docker = all.iter().find(|(_, f)| *f == Format::Docker);
    let oci = all.iter().find(|(_, f)| *f == Format::Oci);
    if let (Some((docker, _)), Some((oci, _))) = (docker, oci) {
        return Err(JoinError::MixedMediaTypes {
            docker: docker.source.clone(),
            oci: oci.source.clone(),
        });
    }
    let format = all.first().map_or(Format::Docker, |(_, f)| *f);
    let key = |p: &Platform| (p.os.clone(), p.architecture.clone(), p.variant.clone());
    all.sort_by_key(|(a, _)| key(&a.platform));
    // Every pair: aliases (`arm64` and `arm64/v8`) sort apart.
    for (i, (a, _)) in all.iter().enumerate() {
        if let Some((b, _)) = all[i + 1..]
            .iter()
            .find(|(b, _)| a.platform.matches(&b.platform))
        {
            return Err(JoinError::SamePlatform {
                platform: b.platform.to_string(),
                first: a.source.clone(),
                second: b.source.clone(),
            });
        }
    }
    Ok(Joined {
        format,
        manifests: all.into_iter().map(|(m, _)| m).collect(),
    })
}

async fn read_source(
    registry: &RegistryClient,
    text: &str,
    reference: &Reference,
) -> Result<Vec<(SourceManifest, Format)>, JoinError> {
    let failed = |error| JoinError::Read {
        source_text: text.to_string(),
        error,
    };
    let unusable = |detail: String| JoinError::Unusable {
        source_text: text.to_string(),
        detail,
    };
    let repository = Reference {
        tag: None,
        digest: None,
        ..reference.clone()
    };
    let top = registry.get_manifest(reference).await.map_err(failed)?;
    let parsed =
        Manifest::parse(&top.bytes, &top.media_type).map_err(|e| unusable(e.to_string()))?;
    let mut out = Vec::new();
    match parsed {
        Manifest::Image(image) => {
            let config = image.config().content_digest();
            let bytes = registry
                .get_blob_limited(&repository, &config, MAX_CONFIG)
                .await
                .map_err(failed)?;
            let platform = ConfigPlatform::parse(&bytes)
                .map_err(|e| unusable(format!("its image config: {e}")))?
                .platform();
            let format = family(&top.media_type).ok_or_else(|| unusable(top.media_type.clone()))?;
            out.push((
                SourceManifest {
                    source: text.to_string(),
                    repository,
                    platform,
                    digest: top.digest,
                    bytes: top.bytes,
                    config,
                    layers: image
                        .layers()
                        .iter()
                        .map(Described::content_digest)
                        .collect(),
                },
                format,
            ));
        }
        Manifest::Index(index) => {
            for entry in index.manifests().iter().filter(|d| !d.is_attestation()) {
                let digest = entry.content_digest();
                let platform = entry.image_platform().ok_or_else(|| {
                    unusable(format!("its index entry {digest} names no platform"))
                })?;
                let child = repository.with_digest(&digest);
                let fetched = registry.get_child_manifest(&child).await.map_err(failed)?;
                let format = family(&fetched.media_type).ok_or_else(|| {
                    unusable(format!(
                        "{platform} is a {}, not an image manifest",
                        fetched.media_type
                    ))
                })?;
                let Ok(Manifest::Image(image)) =
                    Manifest::parse(&fetched.bytes, &fetched.media_type)
                else {
                    return Err(unusable(format!("{platform}: not an image manifest")));
                };
                out.push((
                    SourceManifest {
                        source: text.to_string(),
                        repository: repository.clone(),
                        platform,
                        digest: fetched.digest,
                        bytes: fetched.bytes,
                        config: image.config().content_digest(),
                        layers: image
                            .layers()
                            .iter()
                            .map(Described::content_digest)
                            .collect(),
                    },
                    format,
                ));
            }
            if out.is_empty() {
                return Err(unusable("its index lists no platform image".to_string()));
            }
        }
    }
    Ok(out)
}

fn family(media_type: &str) -> Option<Format> {
    match media_type {
        DOCKER_MANIFEST => Some(Format::Docker),
        OCI_MANIFEST => Some(Format::Oci),
        _ => None,
    }
}

/// Puts every manifest of `joined` into `repo` (blobs first), points `tags` at the one
/// manifest or the index, and verifies what the registry then serves.
pub async fn publish_joined(
    registry: &RegistryClient,
    repo: &Reference,
    tags: &[String],
    joined: &Joined,
    cancel: CancellationToken,
) -> Result<Published, Failed> {
    let ledger = Ledger::default();
    let result = async {
        let copies = joined
            .manifests
            .iter()
            .map(|m| copy_manifest(registry, repo, m, joined.format, &cancel));
        let manifests = futures::future::try_join_all(copies).await?;
        for m in manifests.iter().filter(|m| m.created) {
            ledger.created(&m.digest);
        }
        let tagged = push_tags(
            registry,
            repo,
            &manifests,
            tags,
            joined.format,
            cancel.clone(),
            &ledger,
        )
        .await?;
        verify_pushed(registry, repo, tags, &expected(&tagged, &manifests))
            .await
            .map_err(|source| PublishError::Verify { source })?;
        let requested: Vec<String> = manifests.iter().map(|m| m.platform.to_string()).collect();
        Ok(published(&tagged, &requested, &manifests))
    }
    .await;
    settled(result, &ledger)
}

/// One manifest's config and layers into `repo`, then the manifest itself, same bytes.
async fn copy_manifest(
    registry: &RegistryClient,
    repo: &Reference,
    m: &SourceManifest,
    format: Format,
    cancel: &CancellationToken,
) -> Result<PushedManifest, PublishError> {
    let pusher = registry.pusher(cancel.clone());
    let shown = m.platform.to_string();
    let (pusher_ref, shown_ref) = (&pusher, &shown);
    let mut stats = PushStats::default();
    let blobs = std::iter::once(&m.config).chain(&m.layers);
    let copies = blobs.map(|digest| async move {
        pusher_ref
            .copy_blob(&m.repository, repo, digest)
            .await
            .map_err(|source| PublishError::PushBlob {
                platform: shown_ref.clone(),
                what: format!("blob {digest} from {}", m.source),
                source,
            })
    });
    for copied in futures::future::try_join_all(copies).await? {
        match copied {
            crate::registry::BlobCopy::Existed => stats.layers_existed += 1,
            crate::registry::BlobCopy::Mounted => stats.layers_mounted += 1,
            crate::registry::BlobCopy::Copied => stats.layers_uploaded += 1,
        }
    }
    let manifest = Assembled {
        bytes: m.bytes.clone(),
        media_type: format.manifest_type(),
        digest: m.digest.clone(),
    };
    push_image_manifest(
        &pusher,
        repo,
        m.platform.clone(),
        manifest,
        m.config.clone(),
        stats,
    )
    .await
}

/// Platform → manifest digest, keyed as [`Published`] keys them.
pub fn platform_digests(joined: &Joined) -> BTreeMap<String, Digest> {
    joined
        .manifests
        .iter()
        .map(|m| (m.platform.to_string(), m.digest.clone()))
        .collect()
}
