//! Reaching the daemon: `unix://`, `tcp://` (plain or TLS with a
//! `DOCKER_CERT_PATH`-style directory), defaulting to `DOCKER_HOST` and then
//! the local socket.

use std::path::{Path, PathBuf};

use bollard::{Docker, API_DEFAULT_VERSION};

use super::build::BuildError;

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Seconds to wait for the daemon's response headers. A classic build only
/// answers after it has read the whole context, so this is generous.
const REQUEST_TIMEOUT_SECS: u64 = 900;

/// Connects (lazily: no request is made) to `docker_host`, or `DOCKER_HOST`,
/// or the local socket. With `cert_path` (or `DOCKER_TLS_VERIFY` and
/// `DOCKER_CERT_PATH` in the environment) a `tcp://` host uses TLS with
/// `ca.pem`, `cert.pem` and `key.pem` from that directory.
pub fn connect(docker_host: Option<&str>, cert_path: Option<&Path>) -> Result<Docker, BuildError> {
    let env_host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
    let host = docker_host
        .map(str::to_string)
        .or(env_host)
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
    let cert_dir = cert_path.map(Path::to_path_buf).or_else(env_cert_dir);
    let bad = |reason: String| BuildError::Connect {
        host: host.clone(),
        reason,
    };

    let connected = if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://")
        || host.starts_with("http://")
        || host.starts_with("https://")
    {
        match cert_dir {
            Some(dir) if !host.starts_with("http://") => {
                for f in ["ca.pem", "cert.pem", "key.pem"] {
                    if !dir.join(f).is_file() {
                        return Err(bad(format!(
                            "TLS file {} is missing",
                            dir.join(f).display()
                        )));
                    }
                }
                Docker::connect_with_ssl(
                    &host,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    REQUEST_TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                )
            }
            _ => Docker::connect_with_http(&host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION),
        }
    } else {
        return Err(bad(
            "unsupported scheme; use unix:///path/to/docker.sock or tcp://host:port".to_string(),
        ));
    };
    connected.map_err(|e| bad(e.to_string()))
}

/// `DOCKER_CERT_PATH` (or `~/.docker`) when `DOCKER_TLS_VERIFY` is set.
fn env_cert_dir() -> Option<PathBuf> {
    std::env::var("DOCKER_TLS_VERIFY")
        .ok()
        .filter(|v| !v.is_empty() && v != "0")?;
    std::env::var_os("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
}

/// Checks the daemon answers; returns its version string.
pub async fn ping(docker: &Docker) -> Result<String, BuildError> {
    docker.ping().await.map_err(|e| BuildError::Daemon {
        action: "ping the Docker daemon",
        source: e,
    })?;
    let version = docker.version().await.map_err(|e| BuildError::Daemon {
        action: "read the Docker daemon's version",
        source: e,
    })?;
    Ok(version.version.unwrap_or_else(|| "unknown".to_string()))
}
