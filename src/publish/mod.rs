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
mod error;
mod from_daemon;
mod layers;
pub mod push;

pub use cache::{BlobCache, CachedLayer, CACHE_DIR_ENV};
pub use error::{PublishError, Step};
pub use from_daemon::{push_built, push_cached};
pub use layers::{push_layers, Arrived, LayerBlob};
pub use push::{
    compress_exported, delete_manifests, exported_platform, push_config_and_manifest,
    push_exported, push_tags, resolve_tags, PushStats, PushedManifest, Tagged,
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
    let build_id = build_id(req).await?;
    let cache = BlobCache::from_env();
    let mut local_tags = Vec::new();
    let result = async {
        let mut manifests = Vec::new();
        let mut requested = Vec::new();
        for platform in &req.platforms {
            let tag = format!(
                "stevedore-build/{build_id}:{}",
                platform.to_string().replace('/', "-")
            );
            local_tags.push(tag.clone());
            let dir = scratch.path().join(platform.to_string().replace('/', "-"));
            let pushed = Box::pin(publish_platform(
                docker, registry, req, &repo, platform, &tag, &dir, &cache, &cancel, &mut log,
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

/// One platform: tar the context, build, then [`push_built`] by digest.
#[allow(clippy::too_many_arguments)]
async fn publish_platform(
    docker: &Docker,
    registry: &RegistryClient,
    req: &PublishRequest,
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
    let (context, dockerfile, tar_dir) = (
        req.context.clone(),
        req.dockerfile.clone(),
        dir.to_path_buf(),
    );
    let tar = tokio::task::spawn_blocking(move || {
        docker::write_tar_file(&context, &dockerfile, &tar_dir)
    })
    .await
    .map_err(|e| PublishError::Scratch {
        detail: format!("writing the context tar stopped: {e}"),
    })?
    .map_err(|source| PublishError::Context { source })?;
    let dockerfile_rel = docker::dockerfile_in_context(&req.context, &req.dockerfile)
        .map_err(|source| PublishError::Context { source })?;
    let build = BuildRequest {
        context_tar_path: tar.path().to_path_buf(),
        dockerfile: dockerfile_rel,
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
    drop(tar);
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

/// A short name for the local build tags: the context hash without inputs,
/// so two resources building the same directory at once do not collide on
/// different contexts (and share when identical, which is harmless).
async fn build_id(req: &PublishRequest) -> Result<String, PublishError> {
    let (context, dockerfile) = (req.context.clone(), req.dockerfile.clone());
    let hash = tokio::task::spawn_blocking(move || {
        docker::context_hash(&context, &dockerfile, &BTreeMap::new())
    })
    .await
    .map_err(|e| PublishError::Scratch {
        detail: format!("hashing the context stopped: {e}"),
    })?
    .map_err(|source| PublishError::Context { source })?;
    let hex = hash.trim_start_matches("sha256:");
    Ok(hex.chars().take(16).collect())
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
