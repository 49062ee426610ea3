//! What names and addresses an image, for every part that handles one:
//! references (`host/repo:tag@digest`), platforms (`os/arch[/variant]`),
//! content digests (`algorithm:hex`) and the media types of its parts;
//! and the signed evidence about one (DSSE envelopes, their keys and the
//! in-toto provenance statements they carry).
//! Parsed once where text comes in (the configuration, a registry's answer,
//! a daemon's), then passed as types.
//! Knows nothing of Terraform, Docker or HTTP, so `docker`, `registry` and
//! `publish` all use it without depending on each other.

pub mod digest;
pub mod document;
pub mod dsse;
pub mod intoto;
pub mod keys;
pub mod media_types;
pub mod platform;
pub mod reference;

pub use digest::Digest;
pub use platform::{Platform, PlatformError};
pub use reference::{is_loopback_host, parse_repository, Reference, ReferenceError};
