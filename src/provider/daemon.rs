//! The Docker daemons the provider builds on: its own, named by the provider
//! block's `docker_*` attributes (or the environment), checked at validate
//! time, and connected lazily, once per provider process, in [`Daemons`].

use std::path::PathBuf;

use crate::diag::{Diagnostic, Diagnostics};
use crate::docker::{ConnectCause, ConnectError, Daemon, DaemonSettings, DEFAULT_BUILDER};
use crate::oci::Platform;
use crate::schema::{Attribute, Block};
use crate::value::{AttrPath, Type, Value};

crate::model! {
    /// One `builder` block of the provider: another daemon and the
    /// platforms it builds.
    pub struct BuilderModel, names builder_attr {
        name,
        platforms,
        docker_host,
        docker_cert_path,
        docker_tls_verify,
        docker_context,
    }
}

/// A validated `builder` block.
#[derive(Clone, Debug)]
pub struct BuilderConfig {
    pub name: String,
    pub platforms: Vec<Platform>,
    pub docker_host: Option<String>,
    pub docker_cert_path: Option<PathBuf>,
    pub docker_tls_verify: Option<bool>,
    pub docker_context: Option<String>,
}

pub fn builder_block() -> Block {
    Block::new(
        "Another Docker daemon and the platforms it builds natively (no QEMU), as buildx's \
         multi-node builders: each platform of a build goes to the builder that lists it, else to \
         the provider's own daemon. Platforms on different daemons build at the same time; the \
         provider pushes one index over them and verifies it. Connected once, when a build first \
         needs it.",
    )
    .attr(Attribute::required(
        builder_attr::name,
        Type::String,
        "Unique name; shows in `built_by` and in diagnostics. `default` is the provider's own \
         daemon.",
    ))
    .attr(Attribute::required(
        builder_attr::platforms,
        Type::list(Type::String),
        "The platforms (`os/arch[/variant]`) this daemon builds; a platform listed by two \
         builders is an error.",
    ))
    .attr(Attribute::optional(
        builder_attr::docker_host,
        Type::String,
        "The daemon's address, as the provider's `docker_host`: `unix://`, `tcp://` (TLS with \
         `docker_cert_path` or `docker_tls_verify`) or `ssh://[user@]host[:port]`.",
    ))
    .attr(Attribute::optional(
        builder_attr::docker_cert_path,
        Type::String,
        "Directory with `ca.pem`, `cert.pem` and `key.pem` for a TLS daemon.",
    ))
    .attr(Attribute::optional(
        builder_attr::docker_tls_verify,
        Type::Bool,
        "Use TLS and check the daemon's certificate, as the provider's `docker_tls_verify`.",
    ))
    .attr(Attribute::optional(
        builder_attr::docker_context,
        Type::String,
        "A docker CLI context naming the daemon; conflicts with `docker_host`.",
    ))
}

/// Checks the `builder` blocks: names unique (and not `default`), each
/// naming a daemon and at least one well-formed platform, and no platform
/// listed by two builders (both named).
pub fn validate_builders(blocks: &Value, diags: &mut Diagnostics) {
    let Some(blocks) = blocks.as_list() else {
        return;
    };
    let mut names: Vec<(usize, String)> = Vec::new();
    let mut claimed: Vec<(Platform, String, String)> = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let b = BuilderModel::from_value(block);
        let at = AttrPath::attr("builder").then_index(i);
        let name = b.name.as_str().map(str::to_string);
        let shown = name.clone().unwrap_or_else(|| format!("builder[{i}]"));
        if let Some(name) = &name {
            let error = if name.trim().is_empty() {
                Some("is empty; give the builder a name".to_string())
            } else if name == DEFAULT_BUILDER {
                Some(format!(
                    "{name:?} is the provider's own daemon (its docker_host); choose another name"
                ))
            } else {
                names.iter().find(|(_, n)| n == name).map(|(j, _)| {
                    format!("{name:?} is also the name of builder[{j}]; names are unique")
                })
            };
            match error {
                Some(why) => diags.push(
                    Diagnostic::error("Invalid Builder Name", format!("builder[{i}].name {why}."))
                        .at(at.then_attr(builder_attr::name)),
                ),
                None => names.push((i, name.clone())),
            }
        }
        if b.docker_host.is_null() && b.docker_context.is_null() {
            diags.push(
                Diagnostic::error(
                    "Builder Without A Daemon",
                    format!(
                        "builder {shown:?} names no daemon; set its docker_host (e.g. \
                         \"ssh://ci@arm-builder\") or docker_context."
                    ),
                )
                .at(at.clone()),
            );
        }
        validate(&b.docker_host, &b.docker_context, &at, diags);
        let Some(platforms) = b.platforms.as_list() else {
            continue;
        };
        if platforms.is_empty() {
            diags.push(
                Diagnostic::error(
                    "Builder Without Platforms",
                    format!("builder {shown:?} lists no platform; add one, e.g. \"linux/arm64\"."),
                )
                .at(at.then_attr(builder_attr::platforms)),
            );
        }
        for (k, item) in platforms.iter().enumerate() {
            let Some(text) = item.as_str() else {
                continue;
            };
            let item_at = at.then_attr(builder_attr::platforms).then_index(k);
            match Platform::parse(text) {
                Err(e) => {
                    diags.push(Diagnostic::error("Invalid Platform", e.to_string()).at(item_at))
                }
                Ok(platform) => {
                    let platform = platform.normalized();
                    if let Some((_, other, other_text)) =
                        claimed.iter().find(|(p, _, _)| *p == platform)
                    {
                        diags.push(
                            Diagnostic::error(
                                "Platform Claimed By Two Builders",
                                format!(
                                    "{text:?} is listed by builder {shown:?} and by builder \
                                     {other:?} ({other_text:?}); a platform builds on one \
                                     daemon: keep it in one builder's platforms."
                                ),
                            )
                            .at(item_at),
                        );
                    } else {
                        claimed.push((platform, shown.clone(), text.to_string()));
                    }
                }
            }
        }
    }
}

/// The validated `builder` blocks.
pub fn parse_builders(blocks: &Value) -> Vec<BuilderConfig> {
    let text = |v: &Value| v.as_str().map(str::to_string).filter(|s| !s.is_empty());
    blocks
        .as_list()
        .unwrap_or_default()
        .iter()
        .map(|block| {
            let b = BuilderModel::from_value(block);
            BuilderConfig {
                name: b.name.as_str().unwrap_or_default().to_string(),
                platforms: b
                    .platforms
                    .as_list()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| Platform::parse(p.as_str()?).ok())
                    .collect(),
                docker_host: text(&b.docker_host),
                docker_cert_path: text(&b.docker_cert_path).map(|p| super::expand_home(&p)),
                docker_tls_verify: b.docker_tls_verify.as_bool(),
                docker_context: text(&b.docker_context),
            }
        })
        .collect()
}

/// The builder that builds `platform`: the one whose `platforms` list it,
/// else the provider's own daemon.
pub fn route<'a>(builders: &'a [BuilderConfig], platform: &Platform) -> &'a str {
    builders
        .iter()
        .find(|b| b.platforms.iter().any(|p| p.matches(platform)))
        .map_or(DEFAULT_BUILDER, |b| b.name.as_str())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(name: &str, platforms: &[&str], host: Option<&str>) -> Value {
        BuilderModel {
            name: Value::string(name),
            platforms: Value::string_list(platforms.iter().copied()),
            docker_host: Value::opt_string(host),
            ..Default::default()
        }
        .into_value()
    }

    fn checked(blocks: Vec<Value>) -> Diagnostics {
        let mut diags = Diagnostics::new();
        validate_builders(&Value::List(blocks), &mut diags);
        diags
    }

    fn at(d: &Diagnostic) -> String {
        d.attribute
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn a_platform_listed_by_two_builders_is_refused_naming_both() {
        let d = checked(vec![
            builder("graviton", &["linux/arm64"], Some("ssh://ci@arm")),
            builder("x86", &["linux/amd64"], Some("tcp://x86:2376")),
            builder("pi", &["linux/arm/v7", "linux/arm64/v8"], Some("ssh://pi")),
        ]);
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert_eq!(at(&d.0[0]), "builder[2].platforms[1]");
        for name in ["\"graviton\"", "\"pi\"", "linux/arm64/v8"] {
            assert!(d.0[0].detail.contains(name), "{}", d.0[0].detail);
        }
    }

    #[test]
    fn names_are_unique_not_default_and_every_builder_names_a_daemon_and_a_platform() {
        let d = checked(vec![
            builder("a", &["linux/arm64"], Some("ssh://a")),
            builder("a", &["linux/s390x"], Some("ssh://b")),
            builder("default", &["linux/ppc64le"], Some("ssh://c")),
            builder("d", &["linux/riscv64"], None),
            builder("e", &[], Some("ssh://e")),
            builder("f", &["linux/amd46"], Some("ftp://f")),
        ]);
        let paths: Vec<String> = d.0.iter().map(at).collect();
        assert_eq!(
            paths,
            [
                "builder[1].name",
                "builder[2].name",
                "builder[3]",
                "builder[4].platforms",
                "builder[5].docker_host",
                "builder[5].platforms[0]",
            ],
            "{d:?}"
        );
        assert!(d.0[0].detail.contains("builder[0]"), "{}", d.0[0].detail);
        assert!(d.0[2].detail.contains("docker_host"), "{}", d.0[2].detail);
    }

    #[test]
    fn unknown_values_pass_and_each_platform_goes_to_the_builder_that_lists_it() {
        let unknown = BuilderModel {
            name: Value::Unknown,
            platforms: Value::Unknown,
            docker_host: Value::Unknown,
            ..Default::default()
        }
        .into_value();
        assert!(checked(vec![unknown]).is_empty());
        let builders = parse_builders(&Value::List(vec![builder(
            "graviton",
            &["linux/arm64"],
            Some("ssh://ci@arm"),
        )]));
        let p = |s: &str| Platform::parse(s).unwrap();
        assert_eq!(route(&builders, &p("linux/arm64/v8")), "graviton");
        assert_eq!(route(&builders, &p("linux/amd64")), DEFAULT_BUILDER);
    }
}
