//! What can go wrong in a build, from reaching the daemon to the image it
//! reports: its own leaf module, since both `connect` and `build` use it.

use super::context::ContextError;

/// A daemon that could not be reached, and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the Docker daemon at {host}: {cause}")]
pub struct ConnectError {
    /// The daemon's address as shown to users (a password in it masked).
    pub host: String,
    pub cause: ConnectCause,
}

/// Why a daemon could not be reached: callers tell the user different
/// things for a wrong address and for a daemon that is down.
#[derive(Debug, thiserror::Error)]
pub enum ConnectCause {
    /// The settings name no daemon the provider can reach (scheme, host,
    /// port, an unknown context).
    #[error("{0}")]
    Address(String),
    /// The connection could not be prepared here: the TLS files, the local
    /// socket of a tunnel.
    #[error("{0}")]
    Setup(String),
    /// The first request got no answer in time.
    #[error("no answer within {secs}s")]
    NoAnswer { secs: u64 },
    /// The first request failed: the transport's or the daemon's reason.
    #[error("{0}")]
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Connect(#[from] ConnectError),
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
