//! Everything about registries, knowing nothing of Terraform: credential
//! resolution, the distribution-API client and
//! image inspection, and pushing images and proving what the registry then
//! serves. Callers get typed values and this module's own errors;
//! `resources/*` turns them into diagnostics.

pub mod assemble;
mod attempt;
pub mod auth;
mod body;
pub mod cache;
pub mod client;
pub mod copy;
pub mod error;
mod fetch;
mod flight;
mod host;
pub mod inspect;
mod pipeline;
pub mod push;
mod read;
pub mod referrers;
pub mod upload;
pub mod verify;

pub use auth::{AuthError, AuthSettings, Credential, RegistryAuth, Transport};
pub use client::{FetchedManifest, RegistryClient, MANIFEST_MEDIA_TYPES};
pub use copy::BlobCopy;
pub use error::RegistryError;
pub use inspect::{inspect, InspectError, Inspection};
pub use push::{BlobPush, Pusher, RetryPolicy};
pub use verify::{verify_pushed, Expected, ExpectedManifest, VerifyError};
