//! Resources and data sources: the only place where domain errors become
//! diagnostics. One file per type, and [`Provider`], the list of them.

mod common;
pub mod ecs_redeploy;
pub mod image_build;
pub mod image_index;
pub mod image_manifest;

use crate::resource::{DataSource, Resource};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn resources() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(image_build::ImageBuild),
        Arc::new(image_index::ImageIndex),
        Arc::new(ecs_redeploy::EcsRedeploy),
    ]
}

pub fn data_sources() -> Vec<Arc<dyn DataSource>> {
    vec![Arc::new(image_manifest::ImageManifest)]
}

/// The resource and data-source types, by Terraform type name.
pub struct Provider {
    pub resources: BTreeMap<&'static str, Arc<dyn Resource>>,
    pub data_sources: BTreeMap<&'static str, Arc<dyn DataSource>>,
}

impl Provider {
    pub fn new() -> Self {
        let mut resources: BTreeMap<&'static str, Arc<dyn Resource>> = BTreeMap::new();
        let mut data_sources: BTreeMap<&'static str, Arc<dyn DataSource>> = BTreeMap::new();
        for r in self::resources() {
            resources.insert(r.type_name(), r);
        }
        for d in self::data_sources() {
            data_sources.insert(d.type_name(), d);
        }
        Provider {
            resources,
            data_sources,
        }
    }
}

impl Default for Provider {
    fn default() -> Self {
        Self::new()
    }
}
