//! Registry credentials, resolved per host in the order the provider
//! documents: explicit `registry_auth` entries, ECR tokens, the Docker config
//! file (auths, credHelpers, credsStore), then anonymous. Also decides which
//! hosts may be reached over plain HTTP, and (`trust`) whose TLS certificates
//! are checked.

mod docker_config;
mod ecr;
pub mod token;
pub mod trust;

use std::fmt;
use std::path::PathBuf;

pub use docker_config::DockerConfig;
pub use ecr::{is_ecr_host, EcrTokenCache};

use crate::aws::AwsSettings;
use crate::oci::reference::{is_loopback_host, DOCKER_HUB};

/// One `registry_auth` block, as configured.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// host[:port]; a scheme prefix or trailing path is tolerated.
    pub address: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Plain HTTP and no TLS verification for this registry only.
    pub insecure: bool,
    /// Fetch credentials from ECR GetAuthorizationToken for this address.
    pub ecr: bool,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("insecure", &self.insecure)
            .field("ecr", &self.ecr)
            .finish()
    }
}

/// Credentials for one registry host.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry token sent as `Authorization: Bearer` as is.
    Bearer {
        token: String,
    },
    /// An OAuth2 refresh token (Docker's `identitytoken`, or a credential
    /// helper answering with username `<token>`).
    IdentityToken {
        token: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::Bearer { .. } => f.write_str("Bearer(<redacted>)"),
            Credential::IdentityToken { .. } => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where a credential came from, for logs and error details (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Anonymous,
    RegistryAuth,
    Ecr,
    DockerConfig,
    CredentialHelper(String),
}

/// How to reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// Plain HTTP may be used, after HTTPS, when the host does not speak TLS.
    pub plain_http: bool,
    /// The host's own certificate goes unchecked; other hosts its requests
    /// reach keep their checks unless marked too ([`AuthSettings::insecure_names`]).
    pub accept_invalid_certs: bool,
}

/// Why credentials could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read docker config file {path}: {source}")]
    DockerConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("docker config file {path} is not valid JSON: {source}")]
    DockerConfigParse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("docker config file {path}: the auths entry for {host} is invalid: {detail}")]
    DockerConfigEntry {
        path: PathBuf,
        host: String,
        detail: String,
    },
    #[error("credential helper docker-credential-{helper} failed for {host}: {detail}")]
    CredentialHelper {
        helper: String,
        host: String,
        detail: String,
    },
    #[error("cannot get an ECR authorization token for {host}: {detail}")]
    Ecr { host: String, detail: String },
}

/// The provider's registry settings, validated.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub entries: Vec<RegistryAuth>,
    /// Explicit Docker config path; `None` means `$DOCKER_CONFIG/config.json`
    /// or `~/.docker/config.json` if present.
    pub docker_config_file: Option<PathBuf>,
    pub aws: AwsSettings,
}

impl AuthSettings {
    /// Resolves credentials for `host` without caching ECR tokens.
    pub async fn resolve(&self, host: &str) -> Result<Credential, AuthError> {
        Ok(self.resolve_with(host, &EcrTokenCache::default()).await?.0)
    }

    /// Resolves credentials for `host`, reusing ECR tokens from `cache`.
    pub async fn resolve_with(
        &self,
        host: &str,
        cache: &EcrTokenCache,
    ) -> Result<(Credential, CredentialSource), AuthError> {
        let entry = self.entry_for(host);
        // An entry saying `ecr = true` asks for ECR even if it also names a user.
        if let Some(entry) = entry.filter(|e| !e.ecr) {
            if let Some(username) = &entry.username {
                let password = entry.password.clone().unwrap_or_default();
                let credential = Credential::Basic {
                    username: username.clone(),
                    password,
                };
                return Ok((credential, CredentialSource::RegistryAuth));
            }
        }
        if entry.is_some_and(|e| e.ecr) || is_ecr_host(host) {
            let credential = cache.get(host, &self.aws).await?;
            return Ok((credential, CredentialSource::Ecr));
        }
        let config = match &self.docker_config_file {
            Some(path) => Some(DockerConfig::load(&expand_home(path))?),
            None => match default_docker_config_path() {
                Some(path) if path.is_file() => Some(DockerConfig::load(&path)?),
                _ => None,
            },
        };
        if let Some(config) = config {
            if let Some(found) = config.credential_for(host).await? {
                return Ok(found);
            }
        }
        Ok((Credential::Anonymous, CredentialSource::Anonymous))
    }

    /// Plain HTTP (as a fallback after HTTPS) only for loopback hosts or
    /// entries marked `insecure`; certificates go unchecked only for `insecure`.
    pub fn transport_for(&self, host: &str) -> Transport {
        let insecure = self.entry_for(host).is_some_and(|e| e.insecure);
        Transport {
            plain_http: insecure || is_loopback_host(host),
            accept_invalid_certs: insecure,
        }
    }

    /// The host names (see [`trust::host_name`]) of the entries marked
    /// `insecure`: the only hosts whose certificates go unchecked, whichever
    /// registry's request (a token realm, a redirect) reaches them.
    pub fn insecure_names(&self) -> Vec<String> {
        let insecure = self.entries.iter().filter(|e| e.insecure);
        insecure.map(|e| trust::host_name(&e.address)).collect()
    }

    fn entry_for(&self, host: &str) -> Option<&RegistryAuth> {
        let wanted = normalize_address(host);
        self.entries
            .iter()
            .find(|e| normalize_address(&e.address) == wanted)
    }
}

/// Reduces an address as users and Docker write it (`https://host:port/v1/`)
/// to a comparable `host[:port]`, folding Docker Hub's names together.
pub fn normalize_address(address: &str) -> String {
    let trimmed = address.trim();
    let without_scheme = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

fn default_docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => dirs::home_dir().map(|home| home.join(".docker").join("config.json")),
    }
}

/// Expands a leading `~/`, since the documented default path is written that way.
fn expand_home(path: &std::path::Path) -> PathBuf {
    match (path.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(entries: Vec<RegistryAuth>) -> AuthSettings {
        AuthSettings {
            entries,
            // A path that does not exist would be an error; point at an empty config.
            docker_config_file: None,
            aws: AwsSettings::default(),
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let entry = RegistryAuth {
            address: "r.io".into(),
            username: Some("u".into()),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let basic = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let bearer = Credential::Bearer {
            token: "hunter2".into(),
        };
        let identity = Credential::IdentityToken {
            token: "hunter2".into(),
        };
        for shown in [
            format!("{entry:?}"),
            format!("{basic:?}"),
            format!("{bearer:?}"),
            format!("{identity:?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn normalises_addresses() {
        let cases = [
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("GHCR.io", "ghcr.io"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_address(input), want, "{input}");
        }
    }

    #[tokio::test]
    async fn explicit_entries_win_and_match_tolerantly() {
        let s = settings(vec![RegistryAuth {
            address: "https://reg.example:5000/".into(),
            username: Some("u".into()),
            password: Some("p".into()),
            ..Default::default()
        }]);
        let got = s.resolve("reg.example:5000").await.unwrap();
        assert_eq!(
            got,
            Credential::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
    }

    #[test]
    fn only_insecure_entries_name_hosts_left_unchecked() {
        let entry = |address: &str, insecure| RegistryAuth {
            address: address.into(),
            insecure,
            ..Default::default()
        };
        let s = settings(vec![
            entry("10.0.0.5:5000", true),
            entry("ghcr.io", false),
            entry("https://Reg.Example:443/", true),
        ]);
        assert_eq!(s.insecure_names(), ["10.0.0.5", "reg.example"]);
        assert!(settings(vec![entry("ghcr.io", false)])
            .insecure_names()
            .is_empty());
    }

    #[test]
    fn plain_http_only_for_loopback_or_insecure() {
        let s = settings(vec![RegistryAuth {
            address: "10.0.0.5:5000".into(),
            insecure: true,
            ..Default::default()
        }]);
        let secure = Transport {
            plain_http: false,
            accept_invalid_certs: false,
        };
        assert_eq!(s.transport_for("ghcr.io"), secure);
        assert!(s.transport_for("127.0.0.1:5000").plain_http);
        assert!(s.transport_for("localhost:5000").plain_http);
        assert!(!s.transport_for("127.0.0.1:5000").accept_invalid_certs);
        let insecure = s.transport_for("10.0.0.5:5000");
        assert!(insecure.plain_http && insecure.accept_invalid_certs);
        assert!(!s.transport_for("10.0.0.5:5001").plain_http);
    }
}
