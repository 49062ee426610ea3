//! One platform's build on the daemon through bollard: the choice between
//! BuildKit (`buildkit.rs`) and the classic builder, and the classic builder
//! itself. Build failures arrive inside a 200 response stream, so the stream
//! is drained and any error item is a failure, reported with the last step
//! and the log tail.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;

use bollard::models::BuildInfoAux;
use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

#[path = "buildkit.rs"]
mod buildkit;
use super::connect::Daemon;
use super::context_tar::{ContextJob, ContextSource};
pub use super::error::BuildError;
use crate::oci::Platform;

pub(crate) const TAIL_LINES: usize = 20;

/// Which builder the daemon should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderKind {
    /// BuildKit when usable through the API, else the classic builder.
    #[default]
    Auto,
    BuildKit,
    Classic,
}

/// A BuildKit secret's value; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(pub String);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The build context, streamed to the daemon as a tar.
    pub context: ContextSource,
    /// The Dockerfile's path inside the tar.
    pub dockerfile: String,
    /// The platform to build for, parsed and checked where it was given.
    pub platform: Platform,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// The local tag the image gets, e.g. `stevedore-build/<hash>:linux-amd64`.
    pub tag: String,
    pub secrets: BTreeMap<String, SecretValue>,
    pub builder: BuilderKind,
    /// Registry images to take build cache from (`--cache-from`).
    pub cache_from: Vec<String>,
    /// Embed BuildKit inline cache metadata in the image's config.
    pub cache_inline: bool,
    /// Credentials the daemon uses to pull `cache_from` images.
    pub registry_credentials: RegistryCredentials,
}

/// Registry credentials by host for the daemon; `Debug` names the hosts only
/// (bollard's `DockerCredentials` would print the password).
#[derive(Clone, Default)]
pub struct RegistryCredentials(pub HashMap<String, bollard::auth::DockerCredentials>);

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image's config digest, `sha256:...`.
    pub image_id: String,
    pub log_tail: Vec<String>,
    /// What BuildKit asked for from the context; `None` when the whole
    /// context went as a tar (the classic builder).
    pub context_sent: Option<ContextSent>,
}

/// A BuildKit build's context transfer: the daemon keeps its copy of the
/// context from the last build and asks only for files that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextSent {
    /// Entries listed to the daemon.
    pub listed: usize,
    /// Files it asked for, and their bytes.
    pub files: usize,
    pub bytes: u64,
}

/// Builds `req` for one platform, sending each line of build output to `log`.
pub async fn build(
    daemon: &Daemon,
    req: BuildRequest,
    cancel: CancellationToken,
    mut log: impl FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    let docker = &daemon.docker;
    let wanted = req.platform.clone();
    let buildkit = match req.builder {
        BuilderKind::Classic => false,
        BuilderKind::BuildKit if buildkit::supported(daemon).await? => true,
        BuilderKind::BuildKit => return Err(BuildError::BuildKitUnavailable),
        BuilderKind::Auto => buildkit::supported(daemon).await?,
    };
    if !buildkit {
        if req.builder == BuilderKind::Auto {
            tracing::debug!(tag = %req.tag, "daemon has no BuildKit API; using the classic builder");
        }
        return build_classic(docker, req, wanted, cancel, log).await;
    }
    let outcome = if req.secrets.is_empty() {
        let _shared = buildkit::SECRET_ISOLATION.read().await;
        buildkit::run(daemon, &req, &cancel, &mut log).await
    } else {
        let _alone = tokio::select! {
            guard = buildkit::SECRET_ISOLATION.write() => guard,
            _ = cancel.cancelled() => return Err(BuildError::Cancelled),
        };
        buildkit::run(daemon, &req, &cancel, &mut log).await
    };
    match outcome {
        buildkit::Outcome::Built(built) => {
            tracing::debug!(tag = %req.tag, "built with BuildKit");
            let actual = image_platform(docker, &req.tag).await?;
            if wanted.matches(&actual) {
                Ok(built)
            } else {
                Err(BuildError::PlatformMismatch {
                    expected: wanted.to_string(),
                    actual: actual.to_string(),
                })
            }
        }
        buildkit::Outcome::Failed(e) => Err(e),
        buildkit::Outcome::Unavailable(reason)
            if req.builder == BuilderKind::Auto && req.secrets.is_empty() =>
        {
            tracing::debug!(tag = %req.tag, %reason, "BuildKit session failed; using the classic builder");
            log(&format!(
                "BuildKit unavailable ({reason}); building with the classic builder"
            ));
            build_classic(docker, req, wanted, cancel, log).await
        }
        buildkit::Outcome::Unavailable(reason) => Err(BuildError::BuildKitRefused { reason }),
    }
}

/// The classic builder, which has no secret mounts and (see below) a
/// platform-blind cache.
async fn build_classic(
    docker: &Docker,
    req: BuildRequest,
    wanted: Platform,
    cancel: CancellationToken,
    mut log: impl FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    if !req.secrets.is_empty() {
        let names = req.secrets.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(BuildError::SecretsNeedBuildKit { names });
    }
    let built = run_once(docker, &req, req.no_cache, &cancel, &mut log).await?;
    let actual = image_platform(docker, &req.tag).await?;
    if wanted.matches(&actual) {
        return Ok(built);
    }
    // GOTCHA: the classic builder's cache key ignores the platform, so a
    // `FROM scratch` (or any already-present base) build for arm64 happily
    // reuses the layers of an earlier amd64 build and yields an amd64 image.
    // Build once more without the cache before calling it a failure.
    if !req.no_cache {
        log(&format!(
            "cached build produced {actual}, not {wanted}; rebuilding without the build cache"
        ));
        let built = run_once(docker, &req, true, &cancel, &mut log).await?;
        let actual = image_platform(docker, &req.tag).await?;
        if wanted.matches(&actual) {
            return Ok(built);
        }
        return Err(BuildError::PlatformMismatch {
            expected: wanted.to_string(),
            actual: actual.to_string(),
        });
    }
    Err(BuildError::PlatformMismatch {
        expected: wanted.to_string(),
        actual: actual.to_string(),
    })
}

/// The os/architecture/variant the daemon recorded for `tag`.
async fn image_platform(docker: &Docker, tag: &str) -> Result<Platform, BuildError> {
    let inspect = docker
        .inspect_image(tag)
        .await
        .map_err(|source| BuildError::Daemon {
            action: "inspect the built image",
            source,
        })?;
    Ok(Platform {
        os: inspect.os.unwrap_or_default(),
        architecture: inspect.architecture.unwrap_or_default(),
        variant: inspect.variant.filter(|v| !v.is_empty()),
    })
}

/// One request to `/build`, its stream drained into `log`.
async fn run_once(
    docker: &Docker,
    req: &BuildRequest,
    no_cache: bool,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    let (body, context) = req.context.stream();
    let built = drain_classic(docker, req, no_cache, body, cancel, log).await;
    context_first(built, &context)
}

/// A build that failed because its context could not be sent is a context
/// error, naming the file, whatever the daemon made of the cut-off tar.
pub(crate) fn context_first<T>(
    result: Result<T, BuildError>,
    context: &ContextJob,
) -> Result<T, BuildError> {
    match (result, context.failure()) {
        (Err(BuildError::Cancelled), _) => Err(BuildError::Cancelled),
        (Err(_), Some(source)) => Err(BuildError::Context { source }),
        (result, _) => result,
    }
}

async fn drain_classic(
    docker: &Docker,
    req: &BuildRequest,
    no_cache: bool,
    body: impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
    cancel: &CancellationToken,
    log: &mut impl FnMut(&str),
) -> Result<BuiltImage, BuildError> {
    let options = common_options(req, no_cache).build();
    let body = bollard::body_try_stream(body);

    let mut progress = Progress::default();
    let mut stream = docker.build_image(options, credentials(req), Some(body));
    loop {
        let item = tokio::select! {
            _ = cancel.cancelled() => return Err(BuildError::Cancelled),
            item = stream.next() => item,
        };
        let Some(item) = item else { break };
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    progress.lines(text, log);
                }
                if let Some(BuildInfoAux::Default(id)) = info.aux {
                    progress.image_id = id.id.or(progress.image_id);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(progress.failed(error));
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                return Err(progress.failed(message));
            }
            Err(source) => {
                return Err(BuildError::Daemon {
                    action: "run the build",
                    source,
                })
            }
        }
    }
    let tail = progress.tail.into_iter().collect();
    finish_build(docker, &req.tag, progress.image_id, tail, progress.step).await
}

/// After the stream ended cleanly: the image id from the `aux` item, or
/// from the tag when the daemon sent none.
pub(crate) async fn finish_build(
    docker: &Docker,
    tag: &str,
    image_id: Option<String>,
    log_tail: Vec<String>,
    step: Option<String>,
) -> Result<BuiltImage, BuildError> {
    let image_id = match image_id {
        Some(id) => id,
        None => match docker.inspect_image(tag).await {
            Ok(inspect) => inspect.id.unwrap_or_default(),
            Err(_) => String::new(),
        },
    };
    if !image_id.starts_with("sha256:") {
        return Err(BuildError::Failed {
            step,
            message: format!(
                "the daemon ended the build without reporting an image (looked for tag {tag})"
            ),
            log_tail,
        });
    }
    Ok(BuiltImage {
        image_id,
        log_tail,
        context_sent: None,
    })
}

#[derive(Default)]
struct Progress {
    tail: VecDeque<String>,
    step: Option<String>,
    image_id: Option<String>,
}

impl Progress {
    fn lines(&mut self, text: &str, log: &mut impl FnMut(&str)) {
        for line in text
            .lines()
            .map(str::trim_end)
            .filter(|l| !l.trim().is_empty())
        {
            log(line);
            if line.starts_with("Step ") && line.contains(" : ") {
                self.step = Some(line.to_string());
            }
            if self.tail.len() == TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(line.to_string());
        }
    }

    fn failed(&self, message: String) -> BuildError {
        BuildError::Failed {
            step: self.step.clone(),
            message: message.trim().to_string(),
            log_tail: self.tail.iter().cloned().collect(),
        }
    }
}

/// The tar file read in chunks for the request body, never whole.
/// Removes the local tag after the push; a missing image is not an error.
pub async fn remove_image(docker: &Docker, tag: &str) -> Result<(), BuildError> {
    // GOTCHA: the classic builder's cache is the chain of parent images; with
    // pruning, removing our tag deleted that chain and every classic rebuild
    // started from nothing. The parents stay (untagged), as after `docker build`.
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
        .force(true)
        .noprune(true)
        .build();
    match docker.remove_image(tag, Some(options), None).await {
        Ok(_) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(source) => Err(BuildError::Daemon {
            action: "remove the build's local image",
            source,
        }),
    }
}

/// The registry credentials to hand the daemon, if any (for `cache_from`).
pub(super) fn credentials(
    req: &BuildRequest,
) -> Option<HashMap<String, bollard::auth::DockerCredentials>> {
    (!req.registry_credentials.0.is_empty()).then(|| req.registry_credentials.0.clone())
}

/// The build options the classic and BuildKit paths share.
pub(super) fn common_options(req: &BuildRequest, no_cache: bool) -> BuildImageOptionsBuilder {
    let mut build_args: HashMap<String, String> = req.build_args.clone().into_iter().collect();
    if req.cache_inline {
        // BuildKit's own switch for inline cache metadata, as `docker build` sets it.
        build_args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
    }
    let labels: HashMap<String, String> = req.labels.clone().into_iter().collect();
    BuildImageOptionsBuilder::new()
        .cachefrom(&req.cache_from)
        .dockerfile(&req.dockerfile)
        .t(&req.tag)
        .platform(&req.platform.to_string())
        .target(req.target.as_deref().unwrap_or(""))
        .buildargs(&build_args)
        .labels(&labels)
        .nocache(no_cache)
        .rm(true)
        .forcerm(true)
}
