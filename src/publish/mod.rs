//! From a context directory to verified tags, knowing nothing of Terraform:
//! per platform, tar the context, build with the daemon, export the image,
//! compress and push its layers, config and manifest (or, when the local
//! [`cache`] and the registry already have all of it, skip the export and
//! compression and push just config and manifest); then point the tags at
//! the single manifest or at an index of exactly the platforms built, and
//! read every tag back before saying it worked.
//!
//! `build_and_push` is the whole flow; the steps are public ([`push`]) so a
//! benchmark or another caller can run or time one of them alone.

pub mod cache;
mod delete;
mod error;
mod from_daemon;
mod layers;
pub mod push;

pub use cache::{BlobCache, CachedLayer, CACHE_DIR_ENV};
pub use delete::{delete_pushed, protected, DeleteOutcome};
pub use error::{PublishError, Step};
pub use from_daemon::{push_built, push_cached};
pub use layers::{push_layers, Arrived, LayerBlob};
pub use push::{
    compress_exported, exported_platform, push_config_and_manifest, push_exported, push_tags,
    resolve_tags, PushStats, PushedManifest, Tagged,
};

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::Docker;
use tokio_util::sync::CancellationToken;

use crate::docker::{self, BuildRequest, BuilderKind, SecretValue};
use crate::registry::assemble::Format;
use crate::registry::{
    verify_pushed, Expected, ExpectedManifest, Platform, Reference, RegistryClient,
};

/// Everything one publish needs, already validated.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub context: PathBuf,
    /// Relative to `context`.
    pub dockerfile: PathBuf,
    /// Where to push; its tag and digest are ignored.
    pub repository: Reference,
    pub tags: Vec<String>,
    pub platforms: Vec<Platform>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretValue>,
    pub no_cache: bool,
    pub format: Format,
    pub builder: BuilderKind,
}

/// What the registry now serves under every tag, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// What the tags point to: the manifest (one platform) or the index.
    pub digest: String,
    pub media_type: String,
    /// Platform (`os/arch[/variant]`) → that platform's manifest digest.
    pub platform_digests: BTreeMap<String, String>,
    /// Platform → config digest (the image ID).
    pub image_ids: BTreeMap<String, String>,
}

/// Builds every platform, pushes, tags and verifies. Build output goes to
/// `log` line by line. Local build tags are removed afterwards, also on failure.
pub async fn build_and_push(
    docker: &Docker,
    registry: &RegistryClient,
    req: &PublishRequest,
    cancel: CancellationToken,
    mut log: impl FnMut(&str) + Send,
) -> Result<Published, PublishError> {
    let repo = Reference {
        tag: None,
        digest: None,
        ..req.repository.clone()
    };
    let scratch = tempfile::Builder::new()
        .prefix("stevedore-publish-")
        .tempdir()
        .map_err(|e| PublishError::Scratch {
            detail: format!("cannot create a temporary directory: {e}"),
        })?;
    let build_id = build_id(req);
    let cache = BlobCache::from_env();
    let mut local_tags = Vec::new();
    let result = async {
        // One context tar serves every platform: the daemon only reads it.
        let context = ContextTar::write(req, scratch.path()).await?;
        let mut manifests = Vec::new();
        let mut requested = Vec::new();
        for platform in &req.platforms {
            let tag = format!("stevedore-build/{build_id}:{}", platform.slug());
            local_tags.push(tag.clone());
            let dir = scratch.path().join(platform.slug());
            let pushed = Box::pin(publish_platform(
                docker, registry, req, &context, &repo, platform, &tag, &dir, &cache, &cancel,
                &mut log,
            ))
            .await?;
            manifests.push(pushed);
            requested.push(platform.to_string());
        }
        let tagged = push_tags(
            registry,
            &repo,
            &manifests,
            &req.tags,
            req.format,
            cancel.clone(),
        )
        .await?;
        let expected = expected(&tagged, &manifests);
        verify_pushed(registry, &repo, &req.tags, &expected)
            .await
            .map_err(|source| PublishError::Verify { source })?;
        Ok(published(&tagged, &requested, &manifests))
    }
    .await;
    for tag in &local_tags {
        if let Err(e) = docker::remove_image(docker, tag).await {
            tracing::warn!(tag = %tag, error = %e, "could not remove the local build tag");
        }
    }
    result
}

/// The build context as the daemon receives it, written once per publish.
struct ContextTar {
    file: tempfile::NamedTempFile,
    /// The Dockerfile's path inside the tar.
    dockerfile: String,
}

impl ContextTar {
    async fn write(
        req: &PublishRequest,
        dir: &std::path::Path,
    ) -> Result<ContextTar, PublishError> {
        let (context, dockerfile, tar_dir) = (
            req.context.clone(),
            req.dockerfile.clone(),
            dir.to_path_buf(),
        );
        let file = tokio::task::spawn_blocking(move || {
            docker::write_tar_file(&context, &dockerfile, &tar_dir)
        })
        .await
        .map_err(|e| PublishError::Scratch {
            detail: format!("writing the context tar stopped: {e}"),
        })?
        .map_err(|source| PublishError::Context { source })?;
        let dockerfile = docker::dockerfile_in_context(&req.context, &req.dockerfile)
            .map_err(|source| PublishError::Context { source })?;
        Ok(ContextTar { file, dockerfile })
    }
}

/// One platform: build from the context tar, then [`push_built`] by digest.
#[allow(clippy::too_many_arguments)]
async fn publish_platform(
    docker: &Docker,
    registry: &RegistryClient,
    req: &PublishRequest,
    context: &ContextTar,
    repo: &Reference,
    platform: &Platform,
    tag: &str,
    dir: &std::path::Path,
    cache: &BlobCache,
    cancel: &CancellationToken,
    log: &mut (impl FnMut(&str) + Send),
) -> Result<PushedManifest, PublishError> {
    let shown = platform.to_string();
    std::fs::create_dir_all(dir).map_err(|e| PublishError::Scratch {
        detail: format!("cannot create {}: {e}", dir.display()),
    })?;
    let build = BuildRequest {
        context_tar_path: context.file.path().to_path_buf(),
        dockerfile: context.dockerfile.clone(),
        platform: shown.clone(),
        build_args: req.build_args.clone(),
        target: req.target.clone(),
        labels: req.labels.clone(),
        no_cache: req.no_cache,
        tag: tag.to_string(),
        secrets: req.secrets.clone(),
        builder: req.builder,
    };
    docker::build(docker, build, cancel.clone(), &mut *log)
        .await
        .map_err(|source| match source {
            docker::BuildError::Cancelled => PublishError::Cancelled,
            source => PublishError::Build {
                platform: shown.clone(),
                source,
            },
        })?;
    let pusher = registry.pusher(cancel.clone());
    let pushed = push_built(docker, &pusher, repo, tag, platform, dir, req.format, cache).await?;
    let s = &pushed.stats;
    log(&format!(
        "pushed {shown} manifest {} ({}; {} layers compressed, {} uploaded, {} already there, \
         {} mounted)",
        pushed.digest,
        if s.export_skipped {
            "export skipped: the registry had every layer"
        } else {
            "exported"
        },
        s.layers_compressed,
        s.layers_uploaded,
        s.layers_existed,
        s.layers_mounted
    ));
    Ok(pushed)
}

/// A short name for this publish's local build tags, unique per call so two
/// resources building at once never share a tag. No I/O: the tags are
/// removed when the publish ends, so only uniqueness matters.
fn build_id(req: &PublishRequest) -> String {
    use sha2::{Digest, Sha256};
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{}|{}|{call}|{nanos}",
        req.context.display(),
        std::process::id()
    );
    hex::encode(Sha256::digest(seed.as_bytes()))[..16].to_string()
}

fn expected(tagged: &Tagged, manifests: &[PushedManifest]) -> Expected {
    Expected {
        digest: tagged.digest.clone(),
        media_type: tagged.media_type.to_string(),
        platforms: manifests
            .iter()
            .map(|m| {
                (
                    m.platform.to_string(),
                    ExpectedManifest {
                        digest: m.digest.clone(),
                        os: m.platform.os.clone(),
                        architecture: m.platform.architecture.clone(),
                        variant: m.platform.variant.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// Keyed by the platforms as requested (`linux/arm64`), not as the config
/// spells them, so callers can look up what they asked for.
fn published(tagged: &Tagged, requested: &[String], manifests: &[PushedManifest]) -> Published {
    let by = |f: fn(&PushedManifest) -> &String| {
        requested
            .iter()
            .cloned()
            .zip(manifests.iter().map(f).cloned())
            .collect()
    };
    Published {
        digest: tagged.digest.clone(),
        media_type: tagged.media_type.to_string(),
        platform_digests: by(|m| &m.digest),
        image_ids: by(|m| &m.config_digest),
    }
}
