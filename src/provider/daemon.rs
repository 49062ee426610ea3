//! The Docker daemons the provider builds on: its own, named by the provider
//! block's `docker_*` attributes (or the environment), checked at validate
//! time, and connected lazily, once per provider process, in [`Daemons`].

use std::path::PathBuf;

use crate::diag::{Diagnostic, Diagnostics};
use crate::docker::{ConnectCause, ConnectError, Daemon, DaemonSettings};
use crate::value::{AttrPath, Value};

/// The daemon address schemes the provider can reach; anything else fails
/// here, at validate, rather than at the first apply.
pub const DOCKER_HOST_SCHEMES: [&str; 5] = ["unix://", "tcp://", "http://", "https://", "ssh://"];

/// Checks a block's `docker_host` and `docker_context` (`at` is the block's
/// path; the root for the provider block itself).
pub fn validate(host: &Value, context: &Value, at: &AttrPath, diags: &mut Diagnostics) {
    if let Some(h) = host.as_str() {
        if let Err(why) = check_docker_host(h) {
            diags.push(
                Diagnostic::error("Invalid Docker Host", why).at(at.then_attr("docker_host")),
            );
        }
    }
    if let Some(name) = context.as_str() {
        let at = at.then_attr("docker_context");
        if !host.is_null() {
            diags.push(
                Diagnostic::error(
                    "Conflicting Docker Daemon Settings",
                    format!(
                        "docker_context = {name:?} and docker_host both name a daemon; keep one \
                         of them (the docker CLI refuses --context with -H too)."
                    ),
                )
                .at(at),
            );
        } else if name.is_empty()
            || name.contains(['/', '\\'])
            || name.contains(char::is_whitespace)
        {
            diags.push(
                Diagnostic::error(
                    "Invalid Docker Context",
                    format!(
                        "{name:?} is not a docker context name; `docker context ls` lists the \
                         names."
                    ),
                )
                .at(at),
            );
        }
    }
}

fn check_docker_host(h: &str) -> Result<(), String> {
    let fix = "use `unix:///var/run/docker.sock`, `tcp://host:2376` (with `docker_cert_path` for \
               TLS) or `ssh://user@host`";
    if h.starts_with("ssh://") {
        return crate::docker::SshTarget::parse(h).map(|_| ());
    }
    if h.starts_with("npipe://") {
        return Err(format!(
            "{h:?}: named pipes exist only for Windows daemons, which this provider does not \
             build on; {fix}"
        ));
    }
    let Some(scheme) = DOCKER_HOST_SCHEMES.iter().find(|p| h.starts_with(**p)) else {
        return Err(format!("{h:?} is not a Docker daemon address; {fix}"));
    };
    let rest = &h[scheme.len()..];
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(format!(
            "{h:?} names no socket or host after {scheme}; {fix}"
        ));
    }
    Ok(())
}

/// What reaching one daemon needs (see `docker::endpoint`).
pub fn settings(
    host: &Option<String>,
    cert_path: &Option<PathBuf>,
    tls_verify: Option<bool>,
    context: &Option<String>,
    config_file: &Option<PathBuf>,
) -> DaemonSettings {
    DaemonSettings {
        host: host.clone(),
        cert_path: cert_path.clone(),
        tls_verify,
        context: context.clone(),
        config_file: config_file.clone(),
    }
}

/// One daemon the provider may build on: its name, how to reach it, and the
/// connection once made.
struct Entry {
    name: String,
    settings: DaemonSettings,
    /// Reached (and asked its version) on first use, then shared: an ssh or
    /// TLS daemon's tunnel and connections serve every build.
    daemon: tokio::sync::OnceCell<Daemon>,
}

/// The provider's daemons by name: each connected when a build first needs
/// it, so a daemon that no platform of this run builds on is never dialled.
pub struct Daemons {
    entries: Vec<Entry>,
}

impl Daemons {
    /// `named` lists each daemon's name and settings; the provider's own
    /// comes first, as [`crate::docker::DEFAULT_BUILDER`].
    pub fn new(named: Vec<(String, DaemonSettings)>) -> Self {
        let entries = named
            .into_iter()
            .map(|(name, settings)| Entry {
                name,
                settings,
                daemon: tokio::sync::OnceCell::new(),
            })
            .collect();
        Daemons { entries }
    }

    /// The daemon called `name`, checked to answer. A failure is not kept:
    /// the next build tries again.
    pub async fn get(&self, name: &str) -> Result<&Daemon, ConnectError> {
        let Some(entry) = self.entries.iter().find(|e| e.name == name) else {
            return Err(ConnectError {
                host: format!("builder {name:?}"),
                cause: ConnectCause::Address("no builder block has this name".to_string()),
            });
        };
        entry
            .daemon
            .get_or_try_init(|| async {
                let settings = &entry.settings;
                let endpoint = crate::docker::resolve(settings, &|name| std::env::var(name).ok())
                    .map_err(|reason| ConnectError {
                        // An ssh address may carry a password: never shown.
                        host: settings.host.as_deref().map_or_else(
                            || "the daemon the docker CLI would use".to_string(),
                            crate::docker::endpoint::redacted,
                        ),
                        cause: ConnectCause::Address(reason),
                    })?;
                tracing::debug!(builder = %entry.name, daemon = %endpoint, "connecting to a Docker daemon");
                let daemon = crate::docker::connect(endpoint)?;
                let version = daemon.check().await?;
                tracing::info!(builder = %entry.name, daemon = %daemon.endpoint, version, "Docker daemon answers");
                Ok(daemon)
            })
            .await
    }
}
