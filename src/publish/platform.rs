//! One platform of a publish: built on its builder's daemon from the
//! streamed context, then pushed by digest (the cached way, else through the
//! daemon for one platform, else streamed out of the daemon). Knows nothing
//! of the other platforms: the index over them is `push_tags`' work.

use tokio_util::sync::CancellationToken;

use super::{
    daemon_push, push_cached, push_streamed, BlobCache, Builder, Ledger, PublishError,
    PublishRequest, PushedManifest,
};
use crate::docker::{self, BuildRequest};
use crate::oci::{Platform, Reference};
use crate::registry::assemble::Format;
use crate::registry::RegistryClient;

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
pub(super) type SharedLog<'a, L> = std::sync::Mutex<&'a mut L>;

fn say<L: FnMut(&str)>(log: &SharedLog<'_, L>, line: &str) {
    let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (*log)(line);
}

/// What every platform of one publish shares.
pub(super) struct Job<'a> {
    pub registry: &'a RegistryClient,
    pub req: &'a PublishRequest,
    pub dockerfile: &'a str,
    pub repo: &'a Reference,
    pub cache: &'a BlobCache,
    pub cancel: &'a CancellationToken,
    pub ledger: &'a Ledger,
}

/// One platform, the builder it builds on, and its local tag there.
pub(super) struct PlatformBuild<'a> {
    pub platform: &'a Platform,
    pub builder: Builder<'a>,
    /// Unique to this publish; removed from the builder's daemon afterwards.
    pub local_tag: String,
}

impl PlatformBuild<'_> {
    /// Builds, then pushes by digest: the cached way, else through the
    /// daemon (one platform), else streamed.
    pub async fn run<L: FnMut(&str) + Send>(
        &self,
        job: &Job<'_>,
        credentials: &docker::RegistryCredentials,
        log: &SharedLog<'_, L>,
    ) -> Result<PushedManifest, PublishError> {
        let Job {
            registry,
            req,
            dockerfile,
            repo,
            cache,
            cancel,
            ledger,
        } = *job;
        let (platform, tag, daemon) = (self.platform, self.local_tag.as_str(), self.builder.daemon);
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
            registry_credentials: credentials.clone(),
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
                builder: self.builder.name.to_string(),
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
            builder = self.builder.name,
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
