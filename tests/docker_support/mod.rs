#![allow(dead_code)]
//! Reading a small image back out of the daemon for assertions: the whole
//! archive in memory through the same streaming walker the provider uses
//! (fine for the few-KiB images tests build; the provider never does this).

use std::io::Read;

use stevedore::docker::{
    config_facts, image_refs, save_reader, walk_archive, ArchiveVisitor, ConfigFacts, ExportError,
};

pub struct SavedImage {
    pub config: Vec<u8>,
    pub facts: ConfigFacts,
    /// Each layer's bytes (as in the archive), in order.
    pub layers: Vec<Vec<u8>>,
}

struct KeepAll;

impl ArchiveVisitor for KeepAll {
    fn file(&mut self, _: &str, _: u64, _: &mut dyn Read) -> Result<bool, ExportError> {
        Ok(true)
    }
}

/// Layers larger than the walker's small-file limit are not kept.
pub async fn saved_image(docker: &bollard::Docker, image: &str) -> SavedImage {
    let docker = docker.clone();
    let image = image.to_string();
    tokio::task::spawn_blocking(move || {
        let index = walk_archive(save_reader(&docker, &image), &mut KeepAll).unwrap();
        let refs = image_refs(&index).unwrap();
        let config = index.document(&refs.config).unwrap().to_vec();
        let layers = refs
            .layers
            .iter()
            .map(|l| index.document(l).unwrap().to_vec())
            .collect();
        SavedImage {
            facts: config_facts(&config).unwrap(),
            config,
            layers,
        }
    })
    .await
    .unwrap()
}
