//! Resources and data sources: the only place where domain errors become
//! diagnostics. One file per type.

mod common;
pub mod ecs_redeploy;
pub mod image_build;
pub mod image_manifest;

use crate::resource::{DataSource, Resource};
use std::sync::Arc;

pub fn resources() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(image_build::ImageBuild),
        Arc::new(ecs_redeploy::EcsRedeploy),
    ]
}

pub fn data_sources() -> Vec<Arc<dyn DataSource>> {
    vec![Arc::new(image_manifest::ImageManifest)]
}
