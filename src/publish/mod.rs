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
mod from_daemon;
mod layers;
mod ledger;
mod pulls;
pub mod push;
mod stream;
mod visit;
mod writers;

pub use cache::{BlobCache, CachedLayer};
pub use daemon_push::DaemonPush;
pub use delete::{delete_pushed, protected, DeleteOutcome};
pub use error::{Failed, PublishError, Step};
pub use from_daemon::{push_built, push_cached};
pub use layers::Arrived;
pub use ledger::{Ledger, Written};
pub use push::{push_config_and_manifest, push_tags, PushStats, PushedManifest, Tagged};
pub use stream::push_streamed;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::docker::{self, BuildRequest, BuilderKind, SecretValue};
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
    /// The manifests this publish created: the repository did not hold them
    /// before (an identical image another state pushed first is not ours).
    pub created: Vec<Digest>,
}

/// Builds every platform, pushes, tags and verifies. Build output goes to
/// `log` line by line. Local build tags are removed afterwards, also on
/// failure, which also says what had been written to the registry by then.
pub async fn build_and_push(
    daemon: &docker::Daemon,
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
    let cache = BlobCache::from_env();
    let ledger = Ledger::default();
    let local_tags: Vec<String> = req
        .platforms
        .iter()
        .map(|p| format!("stevedore-build/{build_id}:{}", p.slug()))
        .collect();
    let docker = &daemon.docker;
    let log = std::sync::Mutex::new(&mut log);
    let result = async {
        let dockerfile = docker::dockerfile_in_context(&req.context, &req.dockerfile)
            .map_err(|source| PublishError::Context { source })?;
        let credentials = pulls::build_credentials(registry, daemon, req).await;
        let job = Job {
            daemon,
            registry,
            req,
            dockerfile: &dockerfile,
            repo: &repo,
            cache: &cache,
            cancel: &cancel,
            ledger: &ledger,
            credentials: &credentials,
        };
        // Platforms build and push at once; the daemon and the registry
        // take that well, and the slowest platform sets the pace.
        let platforms = req
            .platforms
            .iter()
            .zip(&local_tags)
            .map(|(platform, tag)| job.publish_platform(platform, tag, &log));
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
        Ok(published(&tagged, &requested, &manifests))
    }
    .await;
    for tag in &local_tags {
        if let Err(e) = docker::remove_image(docker, tag).await {
            tracing::warn!(tag = %tag, error = %e, "could not remove the local build tag");
        }
    }
    let pruned = cache.clone();
    let _ = tokio::task::spawn_blocking(move || pruned.prune(cache::max_bytes_from_env())).await;
    let written = ledger.written();
    result
        .map(|published| Published {
            created: written.created.clone(),
            ..published
        })
        .map_err(|error| Failed { error, written })
}

/// Set to `0` to never let the daemon push (always stream the image from
/// the provider), e.g. when the daemon cannot reach the registry.
pub const PUSH_THROUGH_DAEMON_ENV: &str = "STEVEDORE_PUSH_THROUGH_DAEMON";

/// Whether the daemon pushes this build's layers: one platform in the
/// Docker format (the daemon pushes exactly that manifest; several
/// platforms would move the tag between them), a daemon that reaches the
/// registry meant, and not switched off.
fn through_daemon(req: &PublishRequest, daemon: &docker::Daemon, repo: &Reference) -> bool {
    req.platforms.len() == 1
        && req.format == Format::Docker
        && !req.tags.is_empty()
        && std::env::var(PUSH_THROUGH_DAEMON_ENV).map_or(true, |v| v != "0")
        && daemon_push::daemon_reaches(&daemon.endpoint, repo)
}

/// Build output lines, from every platform building at once.
type SharedLog<'a, L> = std::sync::Mutex<&'a mut L>;

fn say<L: FnMut(&str)>(log: &SharedLog<'_, L>, line: &str) {
    let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (*log)(line);
}

/// What every platform of one publish shares.
struct Job<'a> {
    daemon: &'a docker::Daemon,
    registry: &'a RegistryClient,
    req: &'a PublishRequest,
    dockerfile: &'a str,
    repo: &'a Reference,
    cache: &'a BlobCache,
    cancel: &'a CancellationToken,
    ledger: &'a Ledger,
    credentials: &'a docker::RegistryCredentials,
}

impl Job<'_> {
    /// One platform: build from the streamed context, then push it by digest: the
    /// cached way, else through the daemon (one platform), else streamed.
    async fn publish_platform<L: FnMut(&str) + Send>(
        &self,
        platform: &Platform,
        tag: &str,
        log: &SharedLog<'_, L>,
    ) -> Result<PushedManifest, PublishError> {
        let Job {
            daemon,
            registry,
            req,
            dockerfile,
            repo,
            cache,
            cancel,
            ledger,
            ..
        } = *self;
        let shown = platform.to_string();
        let build = BuildRequest {
            context: docker::ContextSource {
                dir: req.context.clone(),
                dockerfile: req.dockerfile.clone(),
            },
            dockerfile: dockerfile.to_string(),
            platform: platform.clone(),
            build_args: req.build_args.clone(),
            target: req.target.clone(),
            labels: req.labels.clone(),
            no_cache: req.no_cache,
            tag: tag.to_string(),
            secrets: req.secrets.clone(),
            builder: req.builder,
            cache_from: req.cache_from.iter().map(Reference::to_string).collect(),
            cache_inline: req.cache_inline,
            registry_credentials: self.credentials.clone(),
        };
        let prefix = if req.platforms.len() > 1 {
            format!("[{shown}] ")
        } else {
            String::new()
        };
        let started = std::time::Instant::now();
        let built_image = docker::build(daemon, build, cancel.clone(), |line| {
            say(log, &format!("{prefix}{line}"))
        })
        .await
        .map_err(|source| match source {
            docker::BuildError::Cancelled => PublishError::Cancelled,
            source => PublishError::Build {
                platform: shown.clone(),
                source,
            },
        })?;
        let built = started.elapsed();
        if let Some(sent) = built_image.context_sent {
            say(
                log,
                &format!(
                "{prefix}context: the daemon asked for {} of {} entries ({} bytes); it had the \
                 rest from its last build",
                sent.files, sent.listed, sent.bytes
            ),
            );
        }
        let pusher = registry.pusher(cancel.clone());
        let docker = &daemon.docker;
        let pushed = match push_cached(docker, &pusher, repo, tag, platform, req.format, cache)
            .await?
        {
            Some(pushed) => pushed,
            None => {
                let by_daemon = if through_daemon(req, daemon, repo) {
                    let attempt = daemon_push::DaemonPush {
                        docker,
                        registry,
                        repo,
                        tag: &req.tags[0],
                        image: tag,
                        platform,
                        cache,
                        cancel,
                        ledger,
                    };
                    match attempt.run().await {
                        Ok(pushed) => Some(pushed),
                        Err(_) if cancel.is_cancelled() => return Err(PublishError::Cancelled),
                        Err(why) => {
                            tracing::info!(reason = %why, "the daemon's push was not used; streaming the image");
                            say(
                                log,
                                &format!(
                                "{prefix}the daemon's push was not used ({why}); sending the image \
                                 from here"
                            ),
                            );
                            None
                        }
                    }
                } else {
                    None
                };
                match by_daemon {
                    Some(pushed) => pushed,
                    None => {
                        push_streamed(
                            docker, &pusher, repo, tag, platform, req.format, cache, cancel,
                        )
                        .await?
                    }
                }
            }
        };
        let s = &pushed.stats;
        tracing::info!(
            target: "stevedore::timing",
            platform = %shown,
            build_s = built.as_secs_f64(),
            push_s = (started.elapsed() - built).as_secs_f64(),
            export_skipped = s.export_skipped,
            pushed_by_daemon = s.pushed_by_daemon,
            "platform built and pushed"
        );
        say(
            log,
            &format!(
            "{prefix}pushed {shown} manifest {} ({}; {} layers compressed, {} uploaded, {} already \
             there, {} mounted)",
            pushed.digest,
            if s.export_skipped {
                "export skipped: the registry had every layer"
            } else if s.pushed_by_daemon {
                "the daemon sent the layers, its manifest checked"
            } else {
                "streamed from the daemon"
            },
            s.layers_compressed,
            s.layers_uploaded,
            s.layers_existed,
            s.layers_mounted
        ),
        );
        Ok(pushed)
    }
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
        created: Vec::new(),
    }
}
