//! Which daemon to talk to, decided as the docker CLI decides it, so a
//! provider block that says nothing reaches the daemon `docker` reaches:
//!
//! 1. `docker_host` in the provider block (the CLI's `-H`), with its TLS
//!    settings;
//! 2. `docker_context` in the provider block (the CLI's `--context`);
//! 3. `DOCKER_HOST` in the environment;
//! 4. `DOCKER_CONTEXT` in the environment;
//! 5. `currentContext` in the Docker config file;
//! 6. the local socket.
//!
//! A context named `default` means 3 and 6. A context is read from the
//! CLI's store beside the config file: `contexts/meta/<sha256(name)>/meta.json`
//! for the endpoint and `contexts/tls/<sha256(name)>/docker/` for its TLS
//! files. Only the docker endpoint of a context matters here.
//!
//! TLS for a host that is not from a context: on when `docker_tls_verify`
//! (or `DOCKER_TLS_VERIFY`) is set, when the provider block names a
//! `docker_cert_path`, or for `https://`; the files are `ca.pem`, `cert.pem`
//! and `key.pem` in `docker_cert_path`, `DOCKER_CERT_PATH` or the Docker
//! config directory, each used when present. `docker_tls_verify = false`
//! with a cert path is the CLI's `--tls` without `--tlsverify`: client
//! certificate sent, the daemon's certificate not checked.
//!
//! An address may hold a password (`ssh://user:password@host`, refused when
//! used): an [`Endpoint`] shows it, in messages and logs, as [`redacted`].

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// What the provider block says about the daemon.
#[derive(Clone, Debug, Default)]
pub struct DaemonSettings {
    pub host: Option<String>,
    pub cert_path: Option<PathBuf>,
    pub tls_verify: Option<bool>,
    pub context: Option<String>,
    /// The Docker config file; its directory holds the context store.
    pub config_file: Option<PathBuf>,
}

/// A daemon address with the TLS files to reach it, and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub tls: Option<TlsFiles>,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    ProviderBlock,
    EnvHost,
    Context { name: String, from: &'static str },
    DefaultSocket,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Trust only this CA (plus the system's) for the daemon's certificate.
    pub ca: Option<PathBuf>,
    /// The client certificate and key, when both are there.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Check the daemon's certificate (the CLI's `--tlsverify`).
    pub verify: bool,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", redacted(&self.host))?;
        match &self.origin {
            Origin::ProviderBlock => write!(f, " (docker_host)"),
            Origin::EnvHost => write!(f, " (from DOCKER_HOST)"),
            Origin::Context { name, from } => write!(f, " (docker context {name:?}, {from})"),
            Origin::DefaultSocket => Ok(()),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &redacted(&self.host))
            .field("tls", &self.tls)
            .field("origin", &self.origin)
            .finish()
    }
}

/// `address` with the password of its `user:password@` part, if any, as
/// `***`: what every message shows of a daemon address (`DOCKER_HOST`, a
/// context's host) in place of the address itself.
pub fn redacted(address: &str) -> String {
    let (scheme, rest) = match address.find("://") {
        Some(at) => address.split_at(at + 3),
        None => ("", address),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{host}{tail}"),
            None => address.to_string(),
        },
        None => address.to_string(),
    }
}

/// Reads the environment through `env`, so tests can give their own.
pub fn resolve(
    settings: &DaemonSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Endpoint, String> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let config_dir = config_dir(settings, &env);
    if let Some(host) = &settings.host {
        return with_env_tls(host, Origin::ProviderBlock, settings, &env, &config_dir);
    }
    let context = match &settings.context {
        Some(name) => Some((name.clone(), "docker_context")),
        None if env("DOCKER_HOST").is_some() => None,
        None => env("DOCKER_CONTEXT")
            .map(|n| (n, "from DOCKER_CONTEXT"))
            .or_else(|| current_context(&config_dir).map(|n| (n, "the current context"))),
    };
    match context {
        Some((name, from)) if name != "default" => load_context(&config_dir, &name, from),
        _ => match env("DOCKER_HOST") {
            Some(host) => with_env_tls(&host, Origin::EnvHost, settings, &env, &config_dir),
            None => with_env_tls(
                DEFAULT_SOCKET,
                Origin::DefaultSocket,
                settings,
                &env,
                &config_dir,
            ),
        },
    }
}

/// The directory of the Docker config file: `docker_config_file`'s,
/// `$DOCKER_CONFIG`, or `~/.docker`.
fn config_dir(settings: &DaemonSettings, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = settings.config_file.as_deref().and_then(Path::parent) {
        return dir.to_path_buf();
    }
    env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"))
}

fn with_env_tls(
    host: &str,
    origin: Origin,
    settings: &DaemonSettings,
    env: &dyn Fn(&str) -> Option<String>,
    config_dir: &Path,
) -> Result<Endpoint, String> {
    let env_verify = env("DOCKER_TLS_VERIFY").is_some_and(|v| v != "0" && v != "false");
    let plain_scheme = ["http://", "unix://", "ssh://"]
        .iter()
        .any(|s| host.starts_with(s));
    let tls_wanted = !plain_scheme
        && (settings.tls_verify.unwrap_or(env_verify)
            || settings.cert_path.is_some()
            || host.starts_with("https://"));
    let tls = match tls_wanted {
        false => None,
        true => {
            let named = match (&settings.cert_path, env("DOCKER_CERT_PATH")) {
                (Some(dir), _) => Some((dir.clone(), "docker_cert_path")),
                (None, Some(dir)) => Some((PathBuf::from(dir), "DOCKER_CERT_PATH")),
                (None, None) => None,
            };
            if let Some((dir, name)) = &named {
                if !dir.is_dir() {
                    return Err(format!(
                        "{name} = {:?} is not a directory; it should hold ca.pem, cert.pem and key.pem",
                        dir.display().to_string()
                    ));
                }
            }
            let dir = named.map_or_else(|| config_dir.to_path_buf(), |(dir, _)| dir);
            Some(tls_files(&dir, settings.tls_verify.unwrap_or(true)))
        }
    };
    Ok(Endpoint {
        host: host.to_string(),
        tls,
        origin,
    })
}

fn tls_files(dir: &Path, verify: bool) -> TlsFiles {
    let present = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    TlsFiles {
        ca: present("ca.pem"),
        client: present("cert.pem").zip(present("key.pem")),
        verify,
    }
}

/// The context id the CLI's store uses: the hex SHA-256 of its name.
fn context_id(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("currentContext")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn load_context(config_dir: &Path, name: &str, from: &'static str) -> Result<Endpoint, String> {
    let id = context_id(name);
    let meta = config_dir.join("contexts/meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        format!(
            "docker context {name:?} ({from}) is not in {} ({e}); `docker context ls` lists the contexts there",
            config_dir.join("contexts").display()
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "docker context {name:?}: {} is not valid JSON: {e}",
            meta.display()
        )
    })?;
    let docker = &json["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            format!(
                "docker context {name:?} ({from}) has no docker endpoint host in {}",
                meta.display()
            )
        })?;
    let skip_verify = docker["SkipTLSVerify"].as_bool().unwrap_or(false);
    let tls_dir = config_dir.join("contexts/tls").join(&id).join("docker");
    let files = tls_files(&tls_dir, !skip_verify);
    let has_tls = files.ca.is_some() || files.client.is_some() || skip_verify;
    Ok(Endpoint {
        host: host.to_string(),
        tls: (has_tls && !host.starts_with("unix://") && !host.starts_with("ssh://"))
            .then_some(files),
        origin: Origin::Context {
            name: name.to_string(),
            from,
        },
    })
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
