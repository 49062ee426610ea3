//! What can go wrong on the way from a context directory to verified tags,
//! each failure naming its step and, where there is one, the platform.

use super::ledger::Written;
use crate::docker::{BuildError, ConnectError, ContextError, ExportError};
use crate::registry::{RegistryError, VerifyError};

/// A publish that failed, with what it had written to the registry by then:
/// the tags that moved (or may have) whatever step failed.
#[derive(Debug)]
pub struct Failed {
    pub error: PublishError,
    pub written: Written,
}

/// The step a publish failed at, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Context,
    Connect,
    Build,
    Export,
    Compress,
    PushBlobs,
    PushManifest,
    Tag,
    Verify,
    Evidence,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Context => "build context",
            Step::Connect => "connect to the Docker daemon",
            Step::Build => "build",
            Step::Export => "export from the daemon",
            Step::Compress => "layer compression",
            Step::PushBlobs => "push layers and config",
            Step::PushManifest => "push platform manifest",
            Step::Tag => "push tags",
            Step::Verify => "verify",
            Step::Evidence => "push provenance and attachments",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("preparing the build context: {source}")]
    Context {
        #[source]
        source: ContextError,
    },
    #[error("{}{source}", builder_named(.builder))]
    Connect {
        /// The provider's name for the daemon (`default` for its own).
        builder: String,
        #[source]
        source: ConnectError,
    },
    #[error("building {platform}{}: {source}", on_builder(.builder))]
    Build {
        platform: String,
        /// The provider's name for the daemon it built on.
        builder: String,
        #[source]
        source: BuildError,
    },
    /// The caller gave no builder for these platforms (a bug of ours).
    #[error("no daemon was chosen to build {}", .platforms.join(", "))]
    Unrouted { platforms: Vec<String> },
    #[error("exporting the {platform} image from the daemon: {source}")]
    Export {
        platform: String,
        #[source]
        source: ExportError,
    },
    #[error("compressing a {platform} layer: {source}")]
    Compress {
        platform: String,
        #[source]
        source: ExportError,
    },
    #[error("pushing {what} of {platform}: {source}")]
    PushBlob {
        platform: String,
        what: String,
        #[source]
        source: RegistryError,
    },
    #[error("pushing the {platform} manifest: {source}")]
    PushManifest {
        platform: String,
        #[source]
        source: RegistryError,
    },
    #[error("pushing tag {tag}: {source}")]
    Tag {
        tag: String,
        #[source]
        source: RegistryError,
    },
    #[error("verifying what the registry serves: {source}")]
    Verify {
        #[source]
        source: VerifyError,
    },
    #[error("local scratch space: {detail}")]
    Scratch { detail: String },
    #[error("pushing {what}: {source}")]
    Evidence {
        what: String,
        #[source]
        source: super::evidence::EvidenceError,
    },
    #[error("the publish was cancelled")]
    Cancelled,
}

impl PublishError {
    pub fn step(&self) -> Step {
        match self {
            PublishError::Context { .. } | PublishError::Scratch { .. } => Step::Context,
            PublishError::Connect { .. } | PublishError::Unrouted { .. } => Step::Connect,
            PublishError::Build { .. } => Step::Build,
            PublishError::Export { .. } => Step::Export,
            PublishError::Compress { .. } => Step::Compress,
            PublishError::PushBlob { .. } => Step::PushBlobs,
            PublishError::PushManifest { .. } => Step::PushManifest,
            PublishError::Tag { .. } => Step::Tag,
            PublishError::Verify { .. } => Step::Verify,
            PublishError::Evidence { .. } => Step::Evidence,
            PublishError::Cancelled => Step::Build,
        }
    }

    /// The platform being worked on when it failed, if the step has one.
    pub fn platform(&self) -> Option<&str> {
        match self {
            PublishError::Build { platform, .. }
            | PublishError::Export { platform, .. }
            | PublishError::Compress { platform, .. }
            | PublishError::PushBlob { platform, .. }
            | PublishError::PushManifest { platform, .. } => Some(platform),
            _ => None,
        }
    }

    /// The registry error underneath, if the registry is to blame.
    pub fn registry_error(&self) -> Option<&RegistryError> {
        match self {
            PublishError::PushBlob { source, .. }
            | PublishError::PushManifest { source, .. }
            | PublishError::Tag { source, .. } => Some(source),
            PublishError::Verify {
                source: VerifyError::Fetch { source, .. },
            } => Some(source),
            _ => None,
        }
    }
}

/// `builder "x": ` before a named builder's failure; nothing for the
/// provider's own daemon, whose address alone says which it is.
pub(crate) fn builder_named(builder: &str) -> String {
    if builder == crate::docker::DEFAULT_BUILDER {
        String::new()
    } else {
        format!("builder {builder:?}: ")
    }
}

/// ` on builder "x"` after a platform built on a named builder.
fn on_builder(builder: &str) -> String {
    if builder == crate::docker::DEFAULT_BUILDER {
        String::new()
    } else {
        format!(" on builder {builder:?}")
    }
}
