//! What can go wrong in a build, from reaching the daemon to the image it
//! reports: its own leaf module, since both `connect` and `build` use it.

use super::context::ContextError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot connect to the Docker daemon at {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("could not {action}: {source}")]
    Daemon {
        action: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("sending the build context: {source}")]
    Context {
        #[source]
        source: ContextError,
    },
    #[error("{}", failed_message(.step, .message))]
    Failed {
        step: Option<String>,
        message: String,
        log_tail: Vec<String>,
    },
    #[error(
        "BuildKit is not available: the daemon is not a Linux engine with API 1.39 \
         (Docker 18.09) or later; set builder = \"classic\" (or \"auto\") and avoid \
         BuildKit-only Dockerfile features (RUN --mount, secrets)"
    )]
    BuildKitUnavailable,
    #[error(
        "the daemon refused the BuildKit build before it started: {reason}; check that \
         the daemon allows BuildKit sessions (POST /session), or set builder = \"classic\""
    )]
    BuildKitRefused { reason: String },
    #[error(
        "secrets ({names}) need BuildKit secret mounts, which the classic builder does \
         not have; use builder = \"auto\" or \"buildkit\" with a daemon that has \
         BuildKit, or remove `secrets`"
    )]
    SecretsNeedBuildKit { names: String },
    #[error(
        "the daemon built {actual} although {expected} was asked, even without its build \
         cache; check that the Dockerfile's base images exist for {expected}"
    )]
    PlatformMismatch { expected: String, actual: String },
    #[error("the build was cancelled")]
    Cancelled,
}

fn failed_message(step: &Option<String>, message: &str) -> String {
    match step {
        Some(step) => format!("build failed at {step}: {message}"),
        None => format!("build failed: {message}"),
    }
}
