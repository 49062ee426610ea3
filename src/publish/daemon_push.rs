//! The daemon uploads the layers, stevedore checks and keeps the manifest:
//! for one platform in the Docker format, the built image is tagged
//! `<repository>:<first tag>` on the daemon and pushed by it, as
//! `docker push` does. The daemon sends only the layers the repository
//! lacks, without exporting the image, which makes a one-file rebuild cost
//! the one new layer instead of an export of the whole image (`docker save`
//! prepares every layer before its first byte).
//!
//! What the daemon pushed is then read back by digest and taken only if it
//! is exactly one image manifest (Docker schema 2) whose config is the
//! image we built, with one layer per diff_id: the bytes become the
//! platform's manifest and every tag gets them, as on the streamed path.
//! Anything else (the daemon cannot reach or log in to the registry, it
//! starts retrying, an index comes back) is an `Err` with the reason, and
//! the caller streams the image itself; the tags are written after that
//! either way.

use bollard::auth::DockerCredentials;
use bollard::Docker;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::cache::BlobCache;
use super::ledger::Ledger;
use super::push::{PushStats, PushedManifest};
use crate::docker::Endpoint;
use crate::oci::document::{Described, ImageManifest, Manifest};
use crate::oci::media_types::DOCKER_MANIFEST;
use crate::oci::{is_loopback_host, Digest, Platform, Reference};
use crate::registry::RegistryClient;

/// What the daemon's push is asked to do.
pub struct DaemonPush<'a> {
    pub docker: &'a Docker,
    pub registry: &'a RegistryClient,
    pub repo: &'a Reference,
    /// The first of the resource's tags: the one the daemon pushes.
    pub tag: &'a str,
    /// The local build tag.
    pub image: &'a str,
    pub platform: &'a Platform,
    pub cache: &'a BlobCache,
    pub cancel: &'a CancellationToken,
    /// Told about the write of `tag` the daemon makes.
    pub ledger: &'a Ledger,
}

/// Why the daemon's push was not used, for the log.
type Skip = String;

/// Whether the daemon reaches the registry the provider means: a loopback
/// registry is the provider's own machine, which only a local daemon shares.
pub(super) fn daemon_reaches(endpoint: &Endpoint, repo: &Reference) -> bool {
    if !is_loopback_host(repo.api_host()) {
        return true;
    }
    daemon_is_local(endpoint)
}

/// Whether the daemon shares this machine's loopback. Only a unix socket
/// proves it: a `tcp://127.…` daemon is as often the near end of a
/// forwarded connection (`ssh -L`) to a daemon on another machine, whose
/// loopback holds other registries, or none.
pub(super) fn daemon_is_local(endpoint: &Endpoint) -> bool {
    endpoint.host.starts_with("unix://")
}

impl DaemonPush<'_> {
    /// Pushes through the daemon; `Err` with the reason when the caller
    /// should stream the image instead.
    pub async fn run(&self) -> Result<PushedManifest, Skip> {
        let target = self.repo.repository_reference();
        let full = format!("{target}:{}", self.tag);
        // A local name the user already had is put back on the image it
        // named once the push is done; a name we made is removed again.
        let users_image = self
            .docker
            .inspect_image(&full)
            .await
            .ok()
            .map(|i| i.id.unwrap_or_default());
        let options = bollard::query_parameters::TagImageOptionsBuilder::new()
            .repo(&target)
            .tag(self.tag)
            .build();
        self.docker
            .tag_image(self.image, Some(options))
            .await
            .map_err(|e| format!("could not tag the image for the daemon's push: {e}"))?;
        let created = self.config_absent().await;
        self.ledger.writing(self.tag);
        let pushed = self.push(&target).await;
        match &pushed {
            Ok(_) => self.ledger.moved(self.tag),
            // Cancelled mid-push, the manifest PUT may have gone out.
            Err(_) if self.cancel.is_cancelled() => {}
            Err(_) => self.ledger.refused(self.tag),
        }
        self.give_back_name(&full, &target, users_image).await;
        let (digest, stats) = pushed?;
        let mut manifest = self.adopt(&digest, stats).await?;
        manifest.created = created;
        Ok(manifest)
    }

    /// Whether the repository lacked the built image's config before the
    /// push: then no manifest of it was there either, and the one the
    /// daemon pushes is new. Not knowing counts as held.
    async fn config_absent(&self) -> bool {
        let Some(id) = self
            .docker
            .inspect_image(self.image)
            .await
            .ok()
            .and_then(|i| i.id)
            .and_then(|id| Digest::parse(&id).ok())
        else {
            return false;
        };
        let pusher = self.registry.pusher(self.cancel.clone());
        matches!(pusher.blob_exists(self.repo, &id).await, Ok(false))
    }

    /// Leaves the local `<repository>:<tag>` as it was before the push: on
    /// the user's own image when they had that name, else gone.
    async fn give_back_name(&self, full: &str, target: &str, users_image: Option<String>) {
        match users_image {
            Some(id) if !id.is_empty() => {
                let options = bollard::query_parameters::TagImageOptionsBuilder::new()
                    .repo(target)
                    .tag(self.tag)
                    .build();
                if let Err(e) = self.docker.tag_image(&id, Some(options)).await {
                    tracing::warn!(image = %full, error = %e, "could not give the local name back to its image");
                }
            }
            _ => {
                // Off the daemon's image list again, as after our own push;
                // the build tag still holds the image.
                let untag = bollard::query_parameters::RemoveImageOptionsBuilder::new()
                    .noprune(true)
                    .build();
                if let Err(e) = self.docker.remove_image(full, Some(untag), None).await {
                    tracing::debug!(image = %full, error = %e, "could not remove the push tag");
                }
            }
        }
    }

    /// The daemon's push of `target:tag`: the manifest digest it reports,
    /// and how many layers it sent and found.
    async fn push(&self, target: &str) -> Result<(Digest, PushStats), Skip> {
        let credentials = docker_credentials(self.registry, self.repo.api_host()).await;
        let options = bollard::query_parameters::PushImageOptionsBuilder::new()
            .tag(self.tag)
            .build();
        let mut stream = self.docker.push_image(target, Some(options), credentials);
        let mut digest = None;
        let mut stats = PushStats::default();
        loop {
            let item = tokio::select! {
                _ = self.cancel.cancelled() => return Err("cancelled".into()),
                item = stream.next() => item,
            };
            let Some(item) = item else { break };
            let info = item.map_err(|e| format!("the daemon's push failed: {e}"))?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                return Err(format!("the daemon's push failed: {detail}"));
            }
            let status = info.status.unwrap_or_default();
            // The daemon would wait 5, 10, 15 s between attempts; we stream instead.
            if status.starts_with("Retrying in") {
                return Err(format!("the daemon's push is retrying ({status})"));
            }
            match status.as_str() {
                "Pushed" => stats.layers_uploaded += 1,
                "Layer already exists" => stats.layers_existed += 1,
                s if s.starts_with("Mounted from") => stats.layers_mounted += 1,
                _ => {}
            }
            if let Some(d) = reported_digest(&status) {
                digest = Some(d);
            }
        }
        let digest = digest.ok_or("the daemon's push reported no manifest digest")?;
        Ok((digest, stats))
    }

    /// Reads the daemon's manifest back and takes it if it is the image.
    async fn adopt(&self, digest: &Digest, stats: PushStats) -> Result<PushedManifest, Skip> {
        let reference = Reference {
            tag: None,
            digest: Some(digest.clone()),
            ..self.repo.clone()
        };
        let fetched = self
            .registry
            .get_manifest(&reference)
            .await
            .map_err(|e| format!("reading back the daemon's manifest: {e}"))?;
        let inspect = self
            .docker
            .inspect_image(self.image)
            .await
            .map_err(|e| format!("inspecting the built image: {e}"))?;
        let image_id = inspect.id.unwrap_or_default();
        let diff_ids = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
        let manifest = checked(&fetched.media_type, &fetched.bytes, &image_id, &diff_ids)?;
        let config_digest =
            Digest::parse(&image_id).map_err(|e| format!("the built image's id: {e}"))?;
        let repository = self.repo.repository_reference();
        for (diff_id, layer) in diff_ids.iter().zip(manifest.layers()) {
            let digest = layer.content_digest();
            self.cache
                .record_layer(diff_id, &digest, layer.size(), None, Some(&repository));
        }
        Ok(PushedManifest {
            platform: self.platform.clone(),
            digest: fetched.digest,
            media_type: DOCKER_MANIFEST,
            size: fetched.bytes.len() as u64,
            bytes: fetched.bytes,
            config_digest,
            stats: PushStats {
                pushed_by_daemon: true,
                ..stats
            },
            created: false,
        })
    }
}

/// `latest: digest: sha256:… size: 528` → the digest.
fn reported_digest(status: &str) -> Option<Digest> {
    let (_, rest) = status.split_once("digest: ")?;
    let digest = Digest::parse(rest.split_whitespace().next()?).ok()?;
    digest.starts_with("sha256:").then_some(digest)
}

/// The daemon's manifest, if it is one Docker schema 2 image manifest of
/// config `image_id` with a layer per diff_id.
fn checked(
    served_as: &str,
    bytes: &[u8],
    image_id: &str,
    diff_ids: &[String],
) -> Result<ImageManifest, Skip> {
    let not_one = || format!("the daemon pushed a {served_as}, not one Docker image manifest");
    if served_as != DOCKER_MANIFEST {
        return Err(not_one());
    }
    let manifest = match Manifest::parse(bytes, served_as) {
        Ok(Manifest::Image(manifest)) => *manifest,
        Ok(Manifest::Index(_)) => return Err(not_one()),
        Err(e) => {
            return Err(format!(
                "the daemon pushed something that is not an image manifest ({e})"
            ))
        }
    };
    let declared = manifest.media_type().as_ref().map(ToString::to_string);
    if declared.as_deref() != Some(DOCKER_MANIFEST) || manifest.schema_version() != 2 {
        return Err(not_one());
    }
    let config = manifest.config().content_digest();
    if config != image_id {
        return Err(format!(
            "the daemon pushed config {config}, not the built image {image_id}"
        ));
    }
    if manifest.layers().len() != diff_ids.len() {
        return Err(format!(
            "the daemon pushed {} layers for an image of {}",
            manifest.layers().len(),
            diff_ids.len()
        ));
    }
    Ok(manifest)
}

/// The provider's credentials for `host`, as the daemon takes them in
/// `X-Registry-Auth`; `None` for anonymous access or when there are none.
pub(super) async fn docker_credentials(
    registry: &RegistryClient,
    host: &str,
) -> Option<DockerCredentials> {
    use crate::registry::Credential;
    let credential = match registry.auth_settings().resolve(host).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(registry = %host, error = %e, "no credentials to hand the daemon; it goes anonymously");
            return None;
        }
    };
    let base = DockerCredentials {
        serveraddress: Some(host.to_string()),
        ..DockerCredentials::default()
    };
    Some(match credential {
        Credential::Anonymous => return None,
        Credential::Basic { username, password } => DockerCredentials {
            username: Some(username),
            password: Some(password),
            ..base
        },
        Credential::Bearer { token } => DockerCredentials {
            registrytoken: Some(token),
            ..base
        },
        Credential::IdentityToken { token } => DockerCredentials {
            identitytoken: Some(token),
            ..base
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn manifest(media_type: &str, layers: usize) -> Vec<u8> {
        let layers: Vec<_> = (0..layers)
            .map(|n| {
                serde_json::json!({
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": n,
                    "digest": format!("sha256:{n:064}"),
                })
            })
            .collect();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 9,
                "digest": ID,
            },
            "layers": layers,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn only_one_docker_manifest_of_the_built_image_is_taken() {
        let ids = vec!["sha256:a".to_string(), "sha256:b".to_string()];
        let ok = checked(DOCKER_MANIFEST, &manifest(DOCKER_MANIFEST, 2), ID, &ids).unwrap();
        assert_eq!(ok.layers()[1].content_digest(), format!("sha256:{:064}", 1));
        let oci = crate::oci::media_types::OCI_MANIFEST;
        assert!(checked(oci, &manifest(oci, 2), ID, &ids).is_err());
        let other = ID.replace('1', "2");
        assert!(
            checked(DOCKER_MANIFEST, &manifest(DOCKER_MANIFEST, 2), &other, &ids)
                .unwrap_err()
                .contains("not the built image")
        );
        assert!(
            checked(DOCKER_MANIFEST, &manifest(DOCKER_MANIFEST, 3), ID, &ids)
                .unwrap_err()
                .contains("3 layers")
        );
        let index = crate::oci::media_types::OCI_INDEX;
        assert!(checked(index, br#"{"schemaVersion":2,"manifests":[]}"#, ID, &ids).is_err());
    }

    #[test]
    fn the_digest_comes_from_the_daemons_last_status() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            reported_digest(&format!("latest: digest: {d} size: 528")),
            Some(Digest::parse(&d).unwrap())
        );
        assert_eq!(reported_digest("Pushed"), None);
        assert_eq!(
            reported_digest("latest: digest: sha256:short size: 1"),
            None
        );
    }

    #[test]
    fn a_loopback_registry_is_pushed_to_only_by_a_local_daemon() {
        let endpoint = |host: &str| Endpoint {
            host: host.to_string(),
            tls: None,
            origin: crate::docker::endpoint::Origin::DefaultSocket,
        };
        let local = Reference::parse("127.0.0.1:5000/app").unwrap();
        let remote = Reference::parse("registry.example.com/app").unwrap();
        assert!(daemon_reaches(
            &endpoint("unix:///var/run/docker.sock"),
            &local
        ));
        assert!(!daemon_reaches(&endpoint("tcp://127.0.0.1:2375"), &local));
        assert!(!daemon_reaches(&endpoint("tcp://localhost:2376"), &local));
        assert!(!daemon_reaches(&endpoint("ssh://me@build-box"), &local));
        assert!(!daemon_reaches(&endpoint("tcp://10.0.0.5:2375"), &local));
        assert!(daemon_reaches(&endpoint("ssh://me@build-box"), &remote));
    }
}
