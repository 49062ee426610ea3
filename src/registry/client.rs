//! The distribution-API client: manifests and blobs by reference, with
//! per-host credentials and transport, and digests we compute ourselves.
//!
//! Credentials are resolved per host here (and refreshed when an ECR token
//! lapses); both reads (`read`, `fetch`) and pushes (`push`) go through the
//! host's [`RegistryHost`]: one connection pool, scheme and token cache per
//! registry for the whole run.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::auth::{AuthSettings, Credential, CredentialSource, EcrTokenCache};
use super::cache::ContentCache;
use super::error::RegistryError;
use super::flight::Flights;
use super::host::RegistryHost;
use crate::oci::{media_types, Digest, Reference};

/// Every manifest type we can read. A registry only serves an OCI index to a
/// client that accepts it: CNCF distribution answers 404 "OCI index found,
/// but accept header does not support OCI indexes" otherwise.
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    media_types::OCI_INDEX,
    media_types::OCI_MANIFEST,
    media_types::DOCKER_LIST,
    media_types::DOCKER_MANIFEST,
];

/// Config blobs are small JSON documents; anything bigger is not one.
pub const MAX_CONFIG_BLOB: u64 = 16 * 1024 * 1024;

/// A manifest exactly as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// sha256 of `bytes`, computed here rather than taken from the
    /// `Docker-Content-Digest` header, so it names what we actually read.
    pub digest: Digest,
}

struct HostCredential {
    credential: Credential,
    source: CredentialSource,
}

/// One per provider; cheap to share behind an `Arc`.
pub struct RegistryClient {
    auth: AuthSettings,
    ecr_tokens: EcrTokenCache,
    credentials: Mutex<HashMap<String, HostCredential>>,
    /// Each registry's connection, scheme and tokens (see `host`).
    hosts: std::sync::Mutex<HashMap<String, Arc<RegistryHost>>>,
    pub(super) content: ContentCache,
    pub(super) manifest_flights: Flights<FetchedManifest>,
    pub(super) head_flights: Flights<Option<Digest>>,
    pub(super) blob_flights: Flights<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client whose content cache is the user's shared one.
    pub fn new(auth: AuthSettings) -> RegistryClient {
        RegistryClient::with_cache(auth, ContentCache::from_env())
    }

    /// A client with its own content cache (tests, benchmarks).
    pub fn with_cache(auth: AuthSettings, content: ContentCache) -> RegistryClient {
        RegistryClient {
            auth,
            ecr_tokens: EcrTokenCache::default(),
            credentials: Mutex::new(HashMap::new()),
            hosts: std::sync::Mutex::new(HashMap::new()),
            content,
            manifest_flights: Flights::default(),
            head_flights: Flights::default(),
            blob_flights: Flights::default(),
        }
    }

    pub fn auth_settings(&self) -> &AuthSettings {
        &self.auth
    }

    /// Fetches a blob of `repository` (tag and digest of the reference are
    /// ignored), at most [`MAX_CONFIG_BLOB`] bytes, verified against `digest`.
    pub async fn get_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        self.get_blob_limited(repository, digest, MAX_CONFIG_BLOB)
            .await
    }

    /// The reference's registry host (one connection pool, scheme and token
    /// cache per registry for the whole run).
    pub(super) fn host_for(
        &self,
        reference: &Reference,
    ) -> Result<Arc<RegistryHost>, RegistryError> {
        let host = reference.api_host();
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = hosts.get(host) {
            return Ok(found.clone());
        }
        let transport = self.auth.transport_for(host);
        let made = Arc::new(RegistryHost::new(
            host,
            &reference.registry,
            transport.plain_http,
            &self.auth.insecure_names(),
        )?);
        hosts.insert(host.to_string(), made.clone());
        Ok(made)
    }

    /// The credential for the reference's host, resolved once per run
    /// (ECR tokens again whenever asked, as they lapse).
    pub(super) async fn session_for(
        &self,
        reference: &Reference,
    ) -> Result<Session, RegistryError> {
        let host = reference.api_host().to_string();
        // Credentials other than ECR tokens do not change during a run;
        // reuse them rather than rereading the docker config or rerunning a
        // credential helper for every request.
        if let Some(existing) = self.credentials.lock().await.get(&host) {
            if existing.source != CredentialSource::Ecr {
                return Ok(Session {
                    auth: existing.credential.clone(),
                    note: describe_credential(&existing.credential, &existing.source),
                });
            }
        }
        let (credential, source) = self
            .auth
            .resolve_with(&host, &self.ecr_tokens)
            .await
            .map_err(|source| RegistryError::Auth {
                registry: reference.registry.clone(),
                source,
            })?;
        // The credential's Debug shows who and from where, never the secret.
        tracing::debug!(host = %host, credential = ?credential, "resolved registry credentials");
        let auth = credential.clone();
        let note = describe_credential(&credential, &source);
        let mut credentials = self.credentials.lock().await;
        let changed = credentials
            .get(&host)
            .is_some_and(|existing| existing.credential != credential);
        credentials.insert(host.clone(), HostCredential { credential, source });
        drop(credentials);
        if changed {
            // Tokens were fetched with the old credential.
            if let Some(known) = self.known_host(&host) {
                known.forget_auth();
            }
        }
        Ok(Session { auth, note })
    }

    fn known_host(&self, host: &str) -> Option<Arc<RegistryHost>> {
        self.hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned()
    }

    /// Drops the credential, challenge and tokens for `host`, so the next
    /// request resolves and learns them again (the push path does this once
    /// after a 401: an ECR token can lapse during a long upload). The
    /// connection and scheme stay.
    pub(super) async fn forget_host(&self, host: &str) {
        self.credentials.lock().await.remove(host);
        if let Some(known) = self.known_host(host) {
            known.forget_auth();
        }
        self.ecr_tokens.invalidate(host).await;
    }
}

/// What one request goes out with.
pub(super) struct Session {
    pub(super) auth: Credential,
    /// Which credentials were used, without secrets, for 401 messages.
    pub(super) note: String,
}

/// Names the credential and its origin, never the secret, so a 401 says
/// whether we sent nothing, or whose password from where.
fn describe_credential(credential: &Credential, source: &CredentialSource) -> String {
    let from = match source {
        CredentialSource::Anonymous => return "no credentials are configured for this host".into(),
        CredentialSource::RegistryAuth => "registry_auth".to_string(),
        CredentialSource::Ecr => "ECR GetAuthorizationToken".to_string(),
        CredentialSource::DockerConfig => "the docker config file".to_string(),
        CredentialSource::CredentialHelper(helper) => format!("docker-credential-{helper}"),
    };
    match credential {
        Credential::Anonymous => "no credentials were sent".into(),
        Credential::Basic { username, .. } => format!("sent user {username:?} from {from}"),
        Credential::Bearer { .. } => format!("sent a registry token from {from}"),
        Credential::IdentityToken { .. } => format!("sent an identity token from {from}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_all_four_manifest_types() {
        for wanted in [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ] {
            assert!(MANIFEST_MEDIA_TYPES.contains(&wanted), "{wanted}");
        }
    }
}
