//! One platform's build on the daemon through bollard: the request, the
//! choice between BuildKit (`buildkit.rs`) and the classic builder
//! (`classic.rs`), and what both share (build options, the end of a build,
//! the platform check).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use tokio_util::sync::CancellationToken;

#[path = "buildkit.rs"]
mod buildkit;
#[path = "classic.rs"]
mod classic;
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
        return classic::build(docker, req, wanted, cancel, log).await;
    }
    let isolation = buildkit::secret_isolation(daemon);
    let outcome = if req.secrets.is_empty() {
        let _shared = isolation.read().await;
        buildkit::run(daemon, &req, &cancel, &mut log).await
    } else {
        let _alone = tokio::select! {
            guard = isolation.write() => guard,
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
            classic::build(docker, req, wanted, cancel, log).await
        }
        buildkit::Outcome::Unavailable(reason) => Err(BuildError::BuildKitRefused { reason }),
    }
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
