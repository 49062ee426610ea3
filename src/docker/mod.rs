//! The Docker side of `stevedore_image_build`: the build context as Docker
//! sends it (`.dockerignore` rules, the plan-time `context_hash`, the tar),
//! one-platform builds on the daemon through bollard (reached as the docker CLI
//! reaches it: `endpoint`, `connect`, `tunnel`), and getting the built
//! image back out (`docker save`) as a stream our own push reads. Knows nothing
//! about Terraform or registries; each part returns its own error enum and
//! `resources` turns them into diagnostics.

pub mod build;
pub mod compress;
pub mod connect;
pub mod context;
pub mod context_tar;
pub mod endpoint;
mod error;
pub mod export;
mod filesync;
mod hash;
pub mod ignore;
mod raw;
mod session;
pub mod stat_cache;
mod tunnel;

pub use build::{
    build, remove_image, BuildError, BuildRequest, BuilderKind, BuiltImage, ContextSent,
    RegistryCredentials, SecretValue,
};
pub use compress::{is_gzip, layer_gzip, HashingWriter, LAYER_GZIP_LEVEL};
pub use connect::{connect, connect_as_the_cli_would, Daemon};
pub use context::{dockerfile_in_context, list_files, ContextEntry, ContextError, EntryKind};
pub use context_tar::{write_tar, ContextJob, ContextSource};
pub use endpoint::{resolve, DaemonSettings, Endpoint};
pub use error::{ConnectCause, ConnectError};
pub use export::{
    config_facts, image_refs, save_reader, walk_archive, ArchiveIndex, ArchiveVisitor, ConfigFacts,
    ExportError, ImageRefs, SMALL_ENTRY,
};
pub use hash::{context_hash, context_hash_with, HashStats};
pub use ignore::IgnoreMatcher;
pub use tunnel::SshTarget;

/// The name `built_by` and diagnostics give the provider's own daemon.
pub const DEFAULT_BUILDER: &str = "default";
