//! stevedore: a Terraform provider (plugin protocol 6) that builds container
//! images for the platform asked, pushes clean manifests, verifies what the
//! registry serves and rolls ECS services onto the new digest.
//!
//! Layering: `protocol` is the only module that sees protobuf; `value`,
//! `schema` and `diag` are the Terraform type system; `resources` turns the
//! domain modules (`registry`, `aws`, ...) into Terraform behaviour.

pub mod aws;
pub mod cache_dir;
pub mod crypto;
pub mod diag;
pub mod docker;
pub mod docs;
pub mod ecs;
pub mod logging;
pub mod oci;
pub mod protocol;
pub mod provider;
pub mod publish;
pub mod registry;
pub mod resource;
pub mod resources;
pub mod schema;
pub mod value;
