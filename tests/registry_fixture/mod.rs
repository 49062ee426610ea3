//! A real CNCF distribution registry (Debian's `docker-registry`) on a free
//! loopback port, plus helpers that push the manifest shapes we meet in the
//! wild over the plain HTTP API. No Docker daemon involved.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use acceptance_tests::push::Uploader;

use serde_json::{json, Value};

pub use acceptance_tests::media_types::*;

/// Docker v2 schema 2 or OCI media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Docker,
    Oci,
}

/// A pushed manifest or index.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub media_type: String,
}

/// One entry of an index to push (the kit's).
pub type Entry = acceptance_tests::Entry<'static>;

pub struct TestRegistry {
    // The process and the uploads are the acceptance tests' kit (port-race
    // safe, readiness checked by a marker header); this adds the shapes the
    // in-process tests need (lying index entries) behind async calls.
    inner: Arc<acceptance_tests::Registry>,
    pub host: String,
}

#[allow(unused_imports)]
pub use acceptance_tests::free_port;
#[allow(unused_imports)]
pub use acceptance_tests::sha256_digest as sha256;

impl TestRegistry {
    /// An open registry.
    pub async fn start() -> TestRegistry {
        TestRegistry::launch(None).await
    }

    /// A registry requiring HTTP basic auth (htpasswd, bcrypt).
    pub async fn start_with_htpasswd(user: &str, password: &str) -> TestRegistry {
        TestRegistry::launch(Some((user.to_string(), password.to_string()))).await
    }

    async fn launch(credentials: Option<(String, String)>) -> TestRegistry {
        // The kit waits with blocking HTTP, which must not run on the runtime.
        let inner = tokio::task::spawn_blocking(move || match credentials {
            Some((user, password)) => acceptance_tests::Registry::with_auth(&user, &password),
            None => acceptance_tests::Registry::start(),
        })
        .await
        .expect("starting docker-registry");
        TestRegistry {
            host: inner.address.clone(),
            inner: Arc::new(inner),
        }
    }

    /// Runs one of the kit's (blocking) uploads off the runtime.
    async fn upload<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Uploader) -> T + Send + 'static,
    ) -> T {
        let registry = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&Uploader::new(&registry)))
            .await
            .expect("an upload to docker-registry")
    }

    pub fn log(&self) -> String {
        self.inner.log()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// Writes a docker config file with an `auths` entry for this registry.
    pub fn docker_config(&self, user: &str, password: &str) -> (tempfile::TempDir, PathBuf) {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut file = std::fs::File::create(&path).unwrap();
        let body = json!({ "auths": { format!("http://{}", self.host): { "auth": auth } } });
        file.write_all(body.to_string().as_bytes()).unwrap();
        (dir, path)
    }

    /// Monolithic upload: POST for a session, then PUT with the digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let (repo, bytes) = (repo.to_string(), bytes.to_vec());
        self.upload(move |up| up.blob(&repo, &bytes)).await
    }

    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &Value,
    ) -> Pushed {
        let bytes = serde_json::to_vec(body).unwrap();
        let (repo, reference, media) = (
            repo.to_string(),
            reference.to_string(),
            media_type.to_string(),
        );
        let digest = self
            .upload(move |up| up.manifest(&repo, &reference, &media, &bytes))
            .await;
        Pushed {
            digest,
            media_type: media_type.into(),
        }
    }

    /// Runs one of the kit's (blocking) image pushes off the runtime.
    async fn craft(
        &self,
        f: impl FnOnce(&acceptance_tests::Pusher) -> acceptance_tests::Pushed + Send + 'static,
    ) -> acceptance_tests::Pushed {
        let registry = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&acceptance_tests::Pusher::new(&registry)))
            .await
            .expect("pushing a test image to docker-registry")
    }

    /// Pushes a one-layer image whose config says `platform`
    /// (`os/arch[/variant]`), under `tag` or only by digest.
    pub async fn push_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        flavor: Flavor,
        platform: &str,
    ) -> Pushed {
        let (repo, tag, platform) = (
            repo.to_string(),
            tag.map(str::to_string),
            platform.to_string(),
        );
        let format = format_of(flavor);
        let pushed = self
            .craft(move |kit| match tag {
                Some(tag) => kit.single_image(&repo, &tag, format, &platform),
                None => kit.untagged(&repo, format, &platform),
            })
            .await;
        Pushed {
            digest: pushed.digest,
            media_type: pushed.media_type,
        }
    }

    /// Pushes the entries' manifests, then an index (OCI) or manifest list
    /// (Docker) referencing them under `tag`. Returns the index and the
    /// entries, in their order.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        flavor: Flavor,
        entries: &[Entry],
    ) -> (Pushed, Vec<Pushed>) {
        let (repo, tag, list) = (repo.to_string(), tag.to_string(), entries.to_vec());
        let format = format_of(flavor);
        let pushed = self
            .craft(move |kit| kit.index_of(&repo, &tag, format, &list))
            .await;
        let mut images = pushed.images.iter();
        let mut attestations = pushed.attestations.iter();
        let children = entries
            .iter()
            .map(|entry| {
                let (digest, media_type) = match entry {
                    // buildx attestations are OCI manifests in either kind of list.
                    Entry::Attestation => (attestations.next(), OCI_MANIFEST),
                    _ => (images.next().map(|i| &i.digest), format.manifest()),
                };
                Pushed {
                    digest: digest.expect("one pushed manifest per entry").clone(),
                    media_type: media_type.to_string(),
                }
            })
            .collect();
        let index = Pushed {
            digest: pushed.digest,
            media_type: pushed.media_type,
        };
        (index, children)
    }
}

fn format_of(flavor: Flavor) -> acceptance_tests::Format {
    match flavor {
        Flavor::Docker => acceptance_tests::Format::Docker,
        Flavor::Oci => acceptance_tests::Format::Oci,
    }
}
