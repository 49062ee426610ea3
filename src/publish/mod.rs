//! From a context directory to verified tags, knowing nothing of Terraform:
//! per platform (all at once), stream the context to the daemon and build,
//! then stream the image out of the daemon, gzipping and uploading each new
//! layer as it passes ([`stream`]), and push config and manifest (or, when
//! the local [`cache`] and the registry already have every layer, skip the
//! export and push just config and manifest); then point the tags at the
//! single manifest or at an index of exactly the platforms built (each tag
//! written once, see [`push_tags`]), and read every tag back before saying
//! it worked. What was written on the way is noted in a [`Ledger`], so a
//! failure says which tags moved and destroy knows what this publish created.

pub mod cache;
mod daemon_push;
mod delete;
mod error;
pub mod evidence;
mod from_daemon;
pub mod join;
mod layers;
mod ledger;
mod platform;
mod pulls;
pub mod push;
mod stream;
mod visit;
mod writers;

pub use cache::{BlobCache, CachedLayer};
pub use daemon_push::DaemonPush;
pub use delete::{delete_evidence, delete_pushed, protected, DeleteOutcome};
pub use error::{Failed, PublishError, Step};
pub use evidence::{Attachment, Evidence, EvidenceRequest, PushedEvidence};
pub use from_daemon::{push_built, push_cached};
pub use layers::Arrived;
pub use ledger::{Ledger, Written};
pub use platform::PUSH_THROUGH_DAEMON_ENV;
pub use push::{push_config_and_manifest, push_tags, PushStats, PushedManifest, Tagged};
pub use stream::push_streamed;

use platform::{Job, PlatformBuild};

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::docker::{self, BuilderKind, SecretValue};
use crate::oci::{Digest, Platform, Reference};
use crate::registry::assemble::Format;
use crate::registry::{verify_pushed, Expected, ExpectedManifest, RegistryClient};

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
    /// Registry images to take build cache from.
    pub cache_from: Vec<Reference>,
    /// Embed BuildKit inline cache metadata in the pushed image.
    pub cache_inline: bool,
    /// Provenance and attachments, pushed as referrers once the tags verify.
    pub evidence: EvidenceRequest,
}

/// What the registry now serves under every tag, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// What the tags point to: the manifest (one platform) or the index.
    pub digest: Digest,
    pub media_type: String,
    /// Platform (`os/arch[/variant]`) → that platform's manifest digest.
    pub platform_digests: BTreeMap<String, Digest>,
    /// Platform → config digest (the image ID).
    pub image_ids: BTreeMap<String, Digest>,
    /// Platform → the name of the builder whose daemon built it.
    pub built_by: BTreeMap<String, String>,
    /// The manifests this publish created: the repository did not hold them
    /// before (an identical image another state pushed first is not ours).
    pub created: Vec<Digest>,
    /// Platform → the digest of its provenance referrer.
    pub provenance_digests: BTreeMap<String, Digest>,
    /// Every referrer pushed (provenance and attachments).
    pub evidence: Vec<PushedEvidence>,
}

/// Where one platform builds: the builder's name (`default` for the
/// provider's own daemon) and its daemon.
#[derive(Clone, Copy)]
pub struct Builder<'a> {
    pub name: &'a str,
    pub daemon: &'a docker::Daemon,
}

/// Builds every platform, each on its builder (`builders` holds one per
/// `req.platforms`, in order), pushes, tags and verifies. Build output goes
/// to `log` line by line. Local build tags are removed afterwards, also on
/// failure, which also says what had been written to the registry by then.
pub async fn build_and_push(
    builders: &[Builder<'_>],
    registry: &RegistryClient,
    req: &PublishRequest,
    cancel: CancellationToken,
    mut log: impl FnMut(&str) + Send,
) -> Result<Published, Failed> {
    let repo = Reference {
        tag: None,
        digest: None,
        ..req.repository.clone()
    };
    let build_id = build_id(req);
    let began = time::OffsetDateTime::now_utc();
    // The base images BuildKit resolved, as its log shows them.
    let bases = std::sync::Mutex::new(evidence::BaseImages::default());
    let mut log = |line: &str| {
        bases
            .lock()
            .unwrap_or_else(|held| held.into_inner())
            .note(line);
        log(line)
    };
    let cache = BlobCache::from_env();
    let ledger = Ledger::default();
    let builds: Vec<PlatformBuild> = req
        .platforms
        .iter()
        .zip(builders)
        .map(|(platform, &builder)| PlatformBuild {
            platform,
            builder,
            local_tag: format!("stevedore-build/{build_id}:{}", platform.slug()),
        })
        .collect();
    let log = std::sync::Mutex::new(&mut log);
    let result = async {
        if builds.len() < req.platforms.len() {
            return Err(PublishError::Unrouted {
                platforms: req.platforms[builds.len()..]
                    .iter()
                    .map(Platform::to_string)
                    .collect(),
            });
        }
        let dockerfile = docker::dockerfile_in_context(&req.context, &req.dockerfile)
            .map_err(|source| PublishError::Context { source })?;
        let job = Job {
            registry,
            req,
            dockerfile: &dockerfile,
            repo: &repo,
            cache: &cache,
            cancel: &cancel,
            ledger: &ledger,
        };
        // Platforms build and push at once, each on its own builder; the
        // daemons and the registry take that well, and the slowest platform
        // sets the pace.
        let credentials = pull_credentials(registry, &builds, req).await;
        let platforms = builds
            .iter()
            .zip(&credentials)
            .map(|(build, credentials)| build.run(&job, credentials, &log));
        let manifests = futures::future::try_join_all(platforms).await?;
        for m in manifests.iter().filter(|m| m.created) {
            ledger.created(&m.digest);
        }
        let requested: Vec<String> = req.platforms.iter().map(Platform::to_string).collect();
        let started = std::time::Instant::now();
        let tagged = push_tags(
            registry,
            &repo,
            &manifests,
            &req.tags,
            req.format,
            cancel.clone(),
            &ledger,
        )
        .await?;
        let expected = expected(&tagged, &manifests);
        verify_pushed(registry, &repo, &req.tags, &expected)
            .await
            .map_err(|source| PublishError::Verify { source })?;
        tracing::info!(
            target: "stevedore::timing",
            tag_and_verify_s = started.elapsed().as_secs_f64(),
            "tags pushed and verified"
        );
        let built_by: BTreeMap<String, String> = requested
            .iter()
            .zip(&builds)
            .map(|(platform, build)| (platform.clone(), build.builder.name.to_string()))
            .collect();
        let evidence = if req.evidence.provenance || !req.evidence.attachments.is_empty() {
            let bases = bases
                .lock()
                .unwrap_or_else(|held| held.into_inner())
                .clone();
            let run = evidence::Run {
                req,
                repo: &repo,
                evidence: &req.evidence,
                builders: &built_by,
                bases: &bases,
                invocation_id: &build_id,
                started: began,
            };
            let pusher = registry.pusher(cancel.clone());
            evidence::push_evidence(&pusher, &run, &requested, &manifests, &tagged).await?
        } else {
            Evidence::default()
        };
        Ok(Published {
            built_by,
            provenance_digests: evidence.provenance_digests,
            evidence: evidence.referrers,
            ..published(&tagged, &requested, &manifests)
        })
    }
    .await;
    for build in &builds {
        let (docker, tag) = (&build.builder.daemon.docker, &build.local_tag);
        if let Err(e) = docker::remove_image(docker, tag).await {
            let builder = build.builder.name;
            tracing::warn!(tag = %tag, builder, error = %e, "could not remove the local build tag");
        }
    }
    let pruned = cache.clone();
    let _ = tokio::task::spawn_blocking(move || pruned.prune(cache::max_bytes_from_env())).await;
    settled(result, &ledger)
}

/// The credentials each build's daemon pulls `FROM` and `cache_from` images
/// with: the provider's, for exactly the registries that daemon can reach,
/// asked once per daemon however many platforms it builds.
async fn pull_credentials(
    registry: &RegistryClient,
    builds: &[PlatformBuild<'_>],
    req: &PublishRequest,
) -> Vec<docker::RegistryCredentials> {
    let mut asked: BTreeMap<&str, docker::RegistryCredentials> = BTreeMap::new();
    let mut credentials = Vec::with_capacity(builds.len());
    for build in builds {
        let name = build.builder.name;
        let found = match asked.get(name) {
            Some(found) => found.clone(),
            None => {
                let found = pulls::build_credentials(registry, build.builder.daemon, req).await;
                asked.insert(name, found.clone());
                found
            }
        };
        credentials.push(found);
    }
    credentials
}

/// A publish's outcome with what its ledger recorded: the manifests it created on success,
/// every write on failure.
// The async publish functions return this same Result (clippy does not look at async fns);
// boxing it only here would move the size, not shrink it.
#[allow(clippy::result_large_err)]
fn settled(result: Result<Published, PublishError>, ledger: &Ledger) -> Result<Published, Failed> {
    let written = ledger.written();
    result
        .map(|published| Published {
            created: written.created.clone(),
            ..published
        })
        .map_err(|error| Failed { error, written })
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
    let by = |f: fn(&PushedManifest) -> &Digest| {
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
        built_by: BTreeMap::new(),
        created: Vec::new(),
        provenance_digests: BTreeMap::new(),
        evidence: Vec::new(),
    }
}
