//! The Docker CLI's `config.json`: `auths` entries, per-host `credHelpers`
//! and the default `credsStore`, with helpers run as
//! `docker-credential-<name> get` (server URL on stdin, JSON on stdout).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{normalize_address, AuthError, Credential, CredentialSource};
use crate::oci::reference::DOCKER_HUB;

/// Helpers may prompt a keychain; do not hang a Terraform run forever on one.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);
/// The key Docker uses for Docker Hub in `auths` and when asking helpers.
const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";
/// The username a helper returns when its secret is an identity token.
const IDENTITY_TOKEN_USERNAME: &str = "<token>";

#[derive(Debug, Default, Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

// Shows which fields are set, never their values.
impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEntry")
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "identitytoken",
                &self.identitytoken.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "registrytoken",
                &self.registrytoken.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// A loaded Docker config file.
#[derive(Debug)]
pub struct DockerConfig {
    path: PathBuf,
    raw: RawConfig,
}

impl DockerConfig {
    pub fn load(path: &Path) -> Result<DockerConfig, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::DockerConfigRead {
            path: path.into(),
            source,
        })?;
        DockerConfig::from_json(path, &text)
    }

    pub fn from_json(path: &Path, text: &str) -> Result<DockerConfig, AuthError> {
        let raw = serde_json::from_str(text).map_err(|source| AuthError::DockerConfigParse {
            path: path.into(),
            source,
        })?;
        Ok(DockerConfig {
            path: path.into(),
            raw,
        })
    }

    /// Credentials for `host`: its credHelper, then an `auths` entry holding
    /// credentials, then the default credsStore. `None` when nothing applies.
    pub async fn credential_for(
        &self,
        host: &str,
    ) -> Result<Option<(Credential, CredentialSource)>, AuthError> {
        let wanted = normalize_address(host);
        let helper = self
            .raw
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_address(k) == wanted);
        if let Some((_, helper)) = helper {
            return run_helper(helper, &wanted).await;
        }
        let entry = self
            .raw
            .auths
            .iter()
            .find(|(k, _)| normalize_address(k) == wanted);
        if let Some((_, entry)) = entry {
            if let Some(credential) = self.entry_credential(&wanted, entry)? {
                return Ok(Some((credential, CredentialSource::DockerConfig)));
            }
        }
        match &self.raw.creds_store {
            Some(store) if !store.is_empty() => run_helper(store, &wanted).await,
            _ => Ok(None),
        }
    }

    fn entry_credential(
        &self,
        host: &str,
        entry: &AuthEntry,
    ) -> Result<Option<Credential>, AuthError> {
        let invalid = |detail: &str| AuthError::DockerConfigEntry {
            path: self.path.clone(),
            host: host.into(),
            detail: detail.into(),
        };
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken {
                token: token.into(),
            }));
        }
        if let Some(token) = entry.registrytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::Bearer {
                token: token.into(),
            }));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| invalid("\"auth\" is not base64"))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| invalid("\"auth\" is not UTF-8"))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| invalid("\"auth\" does not decode to username:password"))?;
            return Ok(Some(Credential::Basic {
                username: username.into(),
                password: password.into(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) if !username.is_empty() => {
                Ok(Some(Credential::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }))
            }
            _ => Ok(None),
        }
    }
}

/// Runs `docker-credential-<helper> get`. A helper that has nothing for this
/// host is not an error: Docker then proceeds anonymously, and so do we.
async fn run_helper(
    helper: &str,
    host: &str,
) -> Result<Option<(Credential, CredentialSource)>, AuthError> {
    let fail = |detail: String| AuthError::CredentialHelper {
        helper: helper.into(),
        host: host.into(),
        detail,
    };
    let server_url = if host == DOCKER_HUB {
        DOCKER_HUB_SERVER_URL
    } else {
        host
    };
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {program}: {e}; install it or remove it from the docker config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading stdin (broken pipe); its exit
        // status and output below say what went wrong better than EPIPE.
        let _ = stdin.write_all(server_url.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "{program} did not answer within {}s",
                HELPER_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| fail(format!("{program} failed: {e}")))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        // The protocol's "not found" answer, printed on stdout by all helpers.
        if message.contains("credentials not found") || stderr.contains("credentials not found") {
            return Ok(None);
        }
        let detail = if message.is_empty() { stderr } else { message };
        return Err(fail(format!(
            "{program} exited with {}: {detail}",
            output.status
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|e| {
        fail(format!(
            "{program} printed something that is not credentials JSON: {e}"
        ))
    })?;
    let source = CredentialSource::CredentialHelper(helper.into());
    if answer.secret.is_empty() {
        return Ok(None);
    }
    let credential = if answer.username == IDENTITY_TOKEN_USERNAME {
        Credential::IdentityToken {
            token: answer.secret,
        }
    } else {
        Credential::Basic {
            username: answer.username,
            password: answer.secret,
        }
    };
    Ok(Some((credential, source)))
}

#[cfg(test)]
#[path = "docker_config_tests.rs"]
mod tests;
