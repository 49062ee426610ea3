//! A real CNCF distribution registry (Debian's `docker-registry`) on a free
//! loopback port, plus helpers that push the manifest shapes we meet in the
//! wild over the plain HTTP API. No Docker daemon involved.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Docker v2 schema 2 or OCI media types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Docker,
    Oci,
}

/// A pushed manifest, as an index would reference it.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub size: usize,
    pub media_type: String,
}

/// One entry of an index to push.
pub enum Entry {
    /// An image whose config and index entry both say this platform.
    Image(&'static str),
    /// An image whose index entry claims `claimed` but whose config says `actual`.
    Lying {
        claimed: &'static str,
        actual: &'static str,
    },
    /// A buildx attestation manifest for the preceding image.
    Attestation,
}

pub struct TestRegistry {
    // The process itself is the acceptance tests' fixture (port-race safe,
    // readiness checked by a marker header); this adds async push helpers.
    inner: acceptance_tests::Registry,
    pub host: String,
    credentials: Option<(String, String)>,
    http: reqwest::Client,
}

#[allow(unused_imports)]
pub use acceptance_tests::free_port;
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
        let auth = credentials.clone();
        // The fixture waits with blocking HTTP, which must not run on the runtime.
        let inner = tokio::task::spawn_blocking(move || match auth {
            Some((user, password)) => acceptance_tests::Registry::with_auth(&user, &password),
            None => acceptance_tests::Registry::start(),
        })
        .await
        .expect("starting docker-registry");
        TestRegistry {
            host: inner.address.clone(),
            inner,
            credentials,
            http: reqwest::Client::new(),
        }
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

    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Monolithic upload: POST for a session, then PUT with the digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let started = self
            .authed(
                self.http
                    .post(self.url(&format!("/v2/{repo}/blobs/uploads/"))),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            started.status(),
            202,
            "start upload: {}",
            started.text().await.unwrap_or_default()
        );
        let location = started.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self
            .authed(
                self.http
                    .put(format!("{location}{separator}digest={digest}")),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.status(),
            201,
            "finish upload: {}",
            put.text().await.unwrap_or_default()
        );
        digest
    }

    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &Value,
    ) -> Pushed {
        let bytes = serde_json::to_vec(body).unwrap();
        let response = self
            .authed(
                self.http
                    .put(self.url(&format!("/v2/{repo}/manifests/{reference}"))),
            )
            .header("content-type", media_type)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            201,
            "push manifest: {}",
            response.text().await.unwrap_or_default()
        );
        Pushed {
            digest: sha256(&bytes),
            size: bytes.len(),
            media_type: media_type.into(),
        }
    }

    /// Pushes a one-layer image whose config says `platform` (`os/arch[/variant]`).
    pub async fn push_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        flavor: Flavor,
        platform: &str,
    ) -> Pushed {
        let parts: Vec<&str> = platform.split('/').collect();
        let mut config = json!({
            "architecture": parts[1], "os": parts[0],
            "config": {}, "rootfs": { "type": "layers", "diff_ids": [] },
        });
        if let Some(variant) = parts.get(2) {
            config["variant"] = json!(variant);
        }
        let (manifest_type, config_type, layer_type) = match flavor {
            Flavor::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
            Flavor::Oci => (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
        };
        self.push_with_config(
            repo,
            tag,
            manifest_type,
            config_type,
            layer_type,
            &config,
            platform.as_bytes(),
        )
        .await
    }

    /// Pushes an attestation manifest like buildx's (in-toto layer, unknown platform config).
    pub async fn push_attestation(&self, repo: &str, subject: &str) -> Pushed {
        let config = json!({ "architecture": "unknown", "os": "unknown", "config": {}, "rootfs": { "type": "layers", "diff_ids": [] } });
        self.push_with_config(
            repo,
            None,
            OCI_MANIFEST,
            OCI_CONFIG,
            "application/vnd.in-toto+json",
            &config,
            subject.as_bytes(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn push_with_config(
        &self,
        repo: &str,
        tag: Option<&str>,
        manifest_type: &str,
        config_type: &str,
        layer_type: &str,
        config: &Value,
        layer_seed: &[u8],
    ) -> Pushed {
        let config_bytes = serde_json::to_vec(config).unwrap();
        let config_digest = self.push_blob(repo, &config_bytes).await;
        let layer = [b"layer:".as_slice(), layer_seed].concat();
        let layer_digest = self.push_blob(repo, &layer).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": { "mediaType": config_type, "digest": config_digest, "size": config_bytes.len() },
            "layers": [{ "mediaType": layer_type, "digest": layer_digest, "size": layer.len() }],
        });
        let reference = match tag {
            Some(tag) => tag.to_string(),
            None => sha256(&serde_json::to_vec(&manifest).unwrap()),
        };
        self.push_manifest(repo, &reference, manifest_type, &manifest)
            .await
    }

    /// Pushes the entries' manifests, then an index (OCI) or manifest list
    /// (Docker) referencing them under `tag`. Returns the index and the entries.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        flavor: Flavor,
        entries: &[Entry],
    ) -> (Pushed, Vec<Pushed>) {
        let mut descriptors = Vec::new();
        let mut pushed = Vec::new();
        for entry in entries {
            let (child, descriptor) = match entry {
                Entry::Image(platform)
                | Entry::Lying {
                    claimed: platform, ..
                } => {
                    let actual = match entry {
                        Entry::Lying { actual, .. } => actual,
                        _ => platform,
                    };
                    let child = self.push_image(repo, None, flavor, actual).await;
                    let descriptor = descriptor(&child, platform_json(platform), None);
                    (child, descriptor)
                }
                Entry::Attestation => {
                    let subject = pushed
                        .last()
                        .map(|p: &Pushed| p.digest.clone())
                        .unwrap_or_default();
                    let child = self.push_attestation(repo, &subject).await;
                    let annotations = json!({
                        "vnd.docker.reference.digest": subject,
                        "vnd.docker.reference.type": "attestation-manifest",
                    });
                    let descriptor = descriptor(
                        &child,
                        json!({ "architecture": "unknown", "os": "unknown" }),
                        Some(annotations),
                    );
                    (child, descriptor)
                }
            };
            descriptors.push(descriptor);
            pushed.push(child);
        }
        let index_type = match flavor {
            Flavor::Docker => DOCKER_LIST,
            Flavor::Oci => OCI_INDEX,
        };
        let index =
            json!({ "schemaVersion": 2, "mediaType": index_type, "manifests": descriptors });
        (
            self.push_manifest(repo, tag, index_type, &index).await,
            pushed,
        )
    }
}

fn platform_json(platform: &str) -> Value {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut value = json!({ "architecture": parts[1], "os": parts[0] });
    if let Some(variant) = parts.get(2) {
        value["variant"] = json!(variant);
    }
    value
}

fn descriptor(child: &Pushed, platform: Value, annotations: Option<Value>) -> Value {
    let mut value = json!({
        "mediaType": child.media_type, "digest": child.digest, "size": child.size, "platform": platform,
    });
    if let Some(annotations) = annotations {
        value["annotations"] = annotations;
    }
    value
}
