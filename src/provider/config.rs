//! The `provider "stevedore"` block: its schema, and raw value → validated
//! settings, once, so deeper code never re-reads config values.

use super::{daemon, expand_home};
use crate::aws::AwsSettings;
use crate::diag::{Diagnostic, Diagnostics};
use crate::registry::{AuthSettings, RegistryAuth};
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::value::{AttrPath, Type, Value};
use std::path::PathBuf;

crate::model! {
    /// The `provider "stevedore"` block.
    pub struct ProviderModel, names attr {
        docker_host,
        docker_cert_path,
        docker_tls_verify,
        docker_context,
        docker_config_file,
        builder,
        registry_auth,
        aws,
    }
}

crate::model! {
    /// One `registry_auth` block.
    pub struct RegistryAuthModel, names auth_attr {
        address,
        username,
        password,
        insecure,
        ecr,
    }
}

crate::model! {
    /// The `aws` block.
    pub struct AwsModel, names aws_attr {
        region,
        profile,
        endpoints,
    }
}

crate::model! {
    /// The `aws.endpoints` block.
    pub struct EndpointsModel, names endpoint_attr {
        ecs,
        ecr,
    }
}

pub fn schema() -> Schema {
    let auth = Block::new("Credentials and transport settings for one registry.")
        .attr(Attribute::required(
            auth_attr::address,
            Type::String,
            "Registry host and optional port, e.g. `127.0.0.1:5000` or `ghcr.io`.",
        ))
        .attr(Attribute::optional(
            auth_attr::username,
            Type::String,
            "User name for basic authentication.",
        ))
        .attr(
            Attribute::optional(
                auth_attr::password,
                Type::String,
                "Password or token for basic authentication.",
            )
            .sensitive(),
        )
        .attr(Attribute::optional(
            auth_attr::insecure,
            Type::Bool,
            "Skip TLS certificate verification for this registry, and allow plain HTTP when it \
             does not speak TLS (HTTPS is tried first). Loopback registries may use plain HTTP \
             without it; their certificates are still checked.",
        ))
        .attr(Attribute::optional(
            auth_attr::ecr,
            Type::Bool,
            "Fetch credentials from ECR `GetAuthorizationToken` for this address (automatic for \
             `*.dkr.ecr.*.amazonaws.com`).",
        ));
    let endpoints = Block::new("Endpoint overrides, for LocalStack or moto.")
        .attr(Attribute::optional(
            endpoint_attr::ecs,
            Type::String,
            "ECS endpoint URL.",
        ))
        .attr(Attribute::optional(
            endpoint_attr::ecr,
            Type::String,
            "ECR endpoint URL.",
        ));
    let aws = Block::new(
        "AWS settings for ECR credentials and ECS. Unset fields follow the AWS SDK's own chain.",
    )
    .attr(Attribute::optional(
        aws_attr::region,
        Type::String,
        "AWS region; default from `AWS_REGION`, the profile, ...",
    ))
    .attr(Attribute::optional(
        aws_attr::profile,
        Type::String,
        "Named profile from the shared AWS config files.",
    ))
    .block(NestedBlock::new(aws_attr::endpoints, Nesting::Single, endpoints).max(1));
    Schema::new(
        "The stevedore provider builds container images for the platforms you name, pushes clean \
         manifests, verifies them, and redeploys ECS services.",
    )
    .attr(Attribute::optional(
        attr::docker_host,
        Type::String,
        "Docker daemon address: `unix:///path`, `tcp://host:port` (TLS with `docker_cert_path` or \
         `docker_tls_verify`) or `ssh://[user@]host[:port]` (through the system `ssh` and `docker \
         system dial-stdio` on the host, as `docker -H ssh://` does). When neither this nor \
         `docker_context` is set, the daemon is the one the docker CLI would use: `DOCKER_HOST`, \
         `DOCKER_CONTEXT`, the current docker context, then `unix:///var/run/docker.sock`.",
    ))
    .attr(Attribute::optional(
        attr::docker_cert_path,
        Type::String,
        "Directory with `ca.pem`, `cert.pem` and `key.pem` for a TLS daemon (the \
         `DOCKER_CERT_PATH` convention); setting it turns TLS on. Default `DOCKER_CERT_PATH`, then \
         the Docker config directory.",
    ))
    .attr(Attribute::optional(
        attr::docker_tls_verify,
        Type::Bool,
        "Use TLS and check the daemon's certificate against `ca.pem` (the CLI's `--tlsverify`; \
         default `DOCKER_TLS_VERIFY`). `false` with `docker_cert_path` is the CLI's `--tls`: the \
         client certificate is sent, the daemon's is not checked.",
    ))
    .attr(Attribute::optional(
        attr::docker_context,
        Type::String,
        "A docker CLI context (`docker context ls`) whose daemon endpoint and TLS files to use, as \
         `docker --context` does; conflicts with `docker_host`.",
    ))
    .attr(Attribute::optional(
        attr::docker_config_file,
        Type::String,
        "Docker CLI config file whose `auths`, `credHelpers` and `credsStore` are honoured; \
         default `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`.",
    ))
    .block(NestedBlock::new(attr::builder, Nesting::List, daemon::builder_block()))
    .block(NestedBlock::new(attr::registry_auth, Nesting::List, auth))
    .block(NestedBlock::new(attr::aws, Nesting::Single, aws).max(1))
}

#[derive(Clone, Debug, Default)]
pub struct ProviderConfig {
    pub docker_host: Option<String>,
    pub docker_cert_path: Option<PathBuf>,
    pub docker_tls_verify: Option<bool>,
    pub docker_context: Option<String>,
    pub docker_config_file: Option<PathBuf>,
    pub builders: Vec<daemon::BuilderConfig>,
    pub registry_auth: Vec<RegistryAuth>,
    pub aws: AwsSettings,
}

/// A known, non-empty string attribute.
fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string).filter(|s| !s.is_empty())
}

/// Static checks; unknown values (config depending on other resources) pass.
pub fn validate(config: &Value) -> Diagnostics {
    let config = ProviderModel::from_value(config);
    let mut diags = Diagnostics::new();
    if let Some(blocks) = config.registry_auth.as_list() {
        for (i, b) in blocks.iter().enumerate() {
            let b = RegistryAuthModel::from_value(b);
            let at = AttrPath::attr(attr::registry_auth).then_index(i);
            if let Some(addr) = b.address.as_str() {
                if let Err(why) = check_address(addr) {
                    diags.push(
                        Diagnostic::error("Invalid Registry Address", why)
                            .at(at.then_attr(auth_attr::address)),
                    );
                }
            }
            // A blank username is no username: the password would go unused.
            let no_user =
                b.username.is_null() || b.username.as_str().is_some_and(|u| u.trim().is_empty());
            if b.password.as_str().is_some() && no_user {
                let has = if b.username.is_null() {
                    "no username"
                } else {
                    "an empty username"
                };
                diags.push(
                    Diagnostic::error(
                        "Password Without Username",
                        format!(
                            "registry_auth[{i}] sets a password but {has}; set `username` as well \
                             (for tokens, use the user name the registry expects, e.g. `AWS` for \
                             ECR or `oauth2accesstoken` for GCR)."
                        ),
                    )
                    .at(at.then_attr(auth_attr::username)),
                );
            }
        }
    }
    daemon::validate(
        &config.docker_host,
        &config.docker_context,
        &AttrPath::root(),
        &mut diags,
    );
    daemon::validate_builders(&config.builder, &mut diags);
    let endpoints = EndpointsModel::from_value(&AwsModel::from_value(&config.aws).endpoints);
    for (service, url) in [
        (endpoint_attr::ecs, &endpoints.ecs),
        (endpoint_attr::ecr, &endpoints.ecr),
    ] {
        let Some(url) = url.as_str() else {
            continue;
        };
        let ok = reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !ok {
            let at = AttrPath::attr(attr::aws)
                .then_attr(aws_attr::endpoints)
                .then_attr(service);
            diags.push(
                Diagnostic::error(
                    "Invalid Endpoint",
                    format!(
                        "aws.endpoints.{service} = {url:?} is not an http(s) URL; use e.g. \
                         \"http://127.0.0.1:5055\" for moto or LocalStack."
                    ),
                )
                .at(at),
            );
        }
    }
    diags
}

fn check_address(addr: &str) -> Result<(), String> {
    let host = addr
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let valid = !host.is_empty()
        && !host.contains('/')
        && !host.contains(char::is_whitespace)
        && host.rsplit_once(':').is_none_or(|(h, p)| {
            !h.is_empty() && (p.parse::<u16>().is_ok() || h.ends_with(']') || host.starts_with('['))
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{addr:?} is not a registry address; use host[:port] such as `127.0.0.1:5000` or \
             `123456789012.dkr.ecr.us-east-1.amazonaws.com`, without a repository path."
        ))
    }
}

/// Where the provider block holds values Terraform does not know yet (they
/// depend on resources not applied), as attribute paths; empty when known.
/// Every object in this schema is a block or attribute, so keys are names.
pub fn unknown_paths(config: &Value) -> Vec<String> {
    fn walk(v: &Value, at: AttrPath, out: &mut Vec<String>) {
        match v {
            Value::Unknown => out.push(at.to_string()),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, at.then_index(i), out);
                }
            }
            Value::Map(m) => {
                for (k, item) in m {
                    let next = if at.is_empty() {
                        AttrPath::attr(k)
                    } else {
                        at.then_attr(k)
                    };
                    walk(item, next, out);
                }
            }
            Value::Dynamic(_, inner) => walk(inner, at, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(config, AttrPath::root(), &mut out);
    out
}

/// Decodes the (wholly known) provider block into settings.
pub fn parse(config: &Value) -> Result<ProviderConfig, Diagnostics> {
    let diags = validate(config);
    if diags.has_errors() {
        return Err(diags);
    }
    let config = ProviderModel::from_value(config);
    let registry_auth = config
        .registry_auth
        .as_list()
        .unwrap_or(&[])
        .iter()
        .map(|b| {
            let b = RegistryAuthModel::from_value(b);
            RegistryAuth {
                address: b.address.as_str().unwrap_or_default().to_string(),
                username: opt_str(&b.username),
                password: b.password.as_str().map(str::to_string),
                insecure: b.insecure.as_bool().unwrap_or(false),
                ecr: b.ecr.as_bool().unwrap_or(false),
            }
        })
        .collect();
    let aws = AwsModel::from_value(&config.aws);
    let endpoints = EndpointsModel::from_value(&aws.endpoints);
    Ok(ProviderConfig {
        docker_host: opt_str(&config.docker_host),
        docker_cert_path: opt_str(&config.docker_cert_path).map(|p| expand_home(&p)),
        docker_tls_verify: config.docker_tls_verify.as_bool(),
        docker_context: opt_str(&config.docker_context),
        docker_config_file: opt_str(&config.docker_config_file).map(|p| expand_home(&p)),
        builders: daemon::parse_builders(&config.builder),
        registry_auth,
        aws: AwsSettings {
            region: opt_str(&aws.region),
            profile: opt_str(&aws.profile),
            ecs_endpoint: opt_str(&endpoints.ecs),
            ecr_endpoint: opt_str(&endpoints.ecr),
        },
    })
}

impl ProviderConfig {
    /// What reaching the provider's own daemon needs (see `docker::endpoint`).
    pub fn daemon_settings(&self) -> crate::docker::DaemonSettings {
        daemon::settings(
            &self.docker_host,
            &self.docker_cert_path,
            self.docker_tls_verify,
            &self.docker_context,
            &self.docker_config_file,
        )
    }

    /// Every daemon builds may run on, by name: the provider's own first.
    pub fn named_daemons(&self) -> Vec<(String, crate::docker::DaemonSettings)> {
        let own = (
            crate::docker::DEFAULT_BUILDER.to_string(),
            self.daemon_settings(),
        );
        let builders = self.builders.iter().map(|b| {
            let settings = daemon::settings(
                &b.docker_host,
                &b.docker_cert_path,
                b.docker_tls_verify,
                &b.docker_context,
                &self.docker_config_file,
            );
            (b.name.clone(), settings)
        });
        std::iter::once(own).chain(builders).collect()
    }

    /// What the registry client needs: credentials per host and transports.
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            entries: self.registry_auth.clone(),
            docker_config_file: self.docker_config_file.clone(),
            aws: self.aws.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(addr: &str, user: Option<&str>, pass: Option<&str>) -> Value {
        RegistryAuthModel {
            address: Value::string(addr),
            username: Value::opt_string(user),
            password: Value::opt_string(pass),
            ..Default::default()
        }
        .into_value()
    }

    #[test]
    fn the_schema_declares_the_models() {
        let provider = schema().block;
        crate::schema::assert_declares(&provider, ProviderModel::ATTRIBUTES);
        let nested = |block: &crate::schema::Block, name: &str| {
            block
                .blocks
                .iter()
                .find(|b| b.name == name)
                .unwrap()
                .block
                .clone()
        };
        let auth = nested(&provider, attr::registry_auth);
        crate::schema::assert_declares(&auth, RegistryAuthModel::ATTRIBUTES);
        let aws = nested(&provider, attr::aws);
        crate::schema::assert_declares(&aws, AwsModel::ATTRIBUTES);
        let endpoints = nested(&aws, aws_attr::endpoints);
        crate::schema::assert_declares(&endpoints, EndpointsModel::ATTRIBUTES);
    }

    #[test]
    fn addresses_are_checked_with_their_path() {
        for (addr, ok) in [
            ("127.0.0.1:5000", true),
            ("ghcr.io", true),
            ("https://ghcr.io/", true),
            ("ghcr.io/org/x", false),
            ("host:notaport", false),
            ("", false),
        ] {
            let cfg = Value::object([("registry_auth", Value::List(vec![auth(addr, None, None)]))]);
            let d = validate(&cfg);
            assert_eq!(!d.has_errors(), ok, "{addr}");
            if !ok {
                assert_eq!(
                    d.0[0].attribute.as_ref().unwrap().to_string(),
                    "registry_auth[0].address"
                );
            }
        }
    }

    #[test]
    fn password_needs_a_username_and_never_shows_in_debug() {
        let cfg = Value::object([(
            "registry_auth",
            Value::List(vec![auth("h:1", None, Some("s3cret"))]),
        )]);
        assert_eq!(
            validate(&cfg).0[0].attribute.as_ref().unwrap().to_string(),
            "registry_auth[0].username"
        );
        let cfg = Value::object([(
            "registry_auth",
            Value::List(vec![auth("h:1", Some("u"), Some("s3cret"))]),
        )]);
        let parsed = parse(&cfg).unwrap();
        assert!(!format!("{parsed:?}").contains("s3cret"));
    }

    #[test]
    fn a_password_with_an_empty_username_is_refused_at_the_block() {
        for user in [None, Some(""), Some("  ")] {
            let cfg = Value::object([(
                "registry_auth",
                Value::List(vec![
                    auth("ok:1", Some("u"), Some("p")),
                    auth("h:1", user, Some("s3cret")),
                ]),
            )]);
            let d = validate(&cfg);
            assert_eq!(d.0.len(), 1, "{user:?}: {d:?}");
            assert_eq!(
                d.0[0].attribute.as_ref().unwrap().to_string(),
                "registry_auth[1].username",
                "{user:?}"
            );
            assert!(
                d.0[0].detail.contains("set `username`"),
                "{}",
                d.0[0].detail
            );
            assert!(d.0[0].detail.contains("registry_auth"), "{}", d.0[0].detail);
            assert!(!d.0[0].detail.contains("s3cret"), "{}", d.0[0].detail);
        }
        // Still unknown: it may be set by apply.
        let cfg = Value::object([(
            "registry_auth",
            Value::List(vec![Value::object([
                ("address", Value::string("h:1")),
                ("username", Value::Unknown),
                ("password", Value::string("p")),
            ])]),
        )]);
        assert!(validate(&cfg).is_empty());
    }

    #[test]
    fn unknown_values_pass_validation() {
        let cfg = Value::object([(
            "registry_auth",
            Value::List(vec![Value::object([
                ("address", Value::Unknown),
                ("password", Value::Unknown),
            ])]),
        )]);
        assert!(!validate(&cfg).has_errors());
    }

    #[test]
    fn docker_hosts_the_provider_cannot_reach_fail_at_validate_naming_the_value() {
        for (host, why) in [
            ("ssh://me@build-box?x=1", "takes no query"),
            ("ssh://", "names no host"),
            (
                "npipe:////./pipe/docker_engine",
                "named pipes exist only for Windows",
            ),
            ("docker.example:2376", "is not a Docker daemon address"),
            ("tcp://", "names no socket or host"),
            ("unix://", "names no socket or host"),
        ] {
            let cfg = Value::object([("docker_host", Value::string(host))]);
            let d = validate(&cfg);
            assert_eq!(d.0.len(), 1, "{host}");
            assert_eq!(
                d.0[0].attribute.as_ref().unwrap().to_string(),
                "docker_host"
            );
            assert!(d.0[0].detail.contains(why), "{host}: {}", d.0[0].detail);
            assert!(
                d.0[0].detail.contains(&format!("{host:?}")),
                "names the value"
            );
        }
        for host in [
            "unix:///var/run/docker.sock",
            "tcp://127.0.0.1:2376",
            "https://d:2376",
            "ssh://me@build-box",
            "ssh://build-box:2222/run/user/1000/docker.sock",
        ] {
            let cfg = Value::object([("docker_host", Value::string(host))]);
            assert!(!validate(&cfg).has_errors(), "{host}");
        }
    }

    #[test]
    fn a_context_and_a_host_together_are_refused_as_the_cli_refuses_them() {
        let both = Value::object([
            ("docker_host", Value::string("tcp://d:2376")),
            ("docker_context", Value::string("ci")),
        ]);
        let d = validate(&both);
        assert_eq!(d.0.len(), 1);
        assert_eq!(
            d.0[0].attribute.as_ref().unwrap().to_string(),
            "docker_context"
        );
        assert!(d.0[0].detail.contains("keep one"), "{}", d.0[0].detail);
        for bad in ["", "a/b", "two words"] {
            let cfg = Value::object([("docker_context", Value::string(bad))]);
            assert!(validate(&cfg).has_errors(), "{bad:?}");
        }
        let ok = Value::object([("docker_context", Value::string("build-box"))]);
        assert!(!validate(&ok).has_errors());
        let parsed = parse(&Value::object([
            ("docker_context", Value::string("build-box")),
            ("docker_tls_verify", Value::Bool(false)),
        ]))
        .unwrap();
        let settings = parsed.daemon_settings();
        assert_eq!(settings.context.as_deref(), Some("build-box"));
        assert_eq!(settings.tls_verify, Some(false));
    }

    #[test]
    fn unknown_values_are_listed_by_path() {
        let cfg = Value::object([
            ("docker_host", Value::string("unix:///x")),
            (
                "registry_auth",
                Value::List(vec![
                    auth("h:1", Some("u"), None),
                    RegistryAuthModel {
                        address: Value::string("h:2"),
                        username: Value::string("u"),
                        password: Value::Unknown,
                        ..Default::default()
                    }
                    .into_value(),
                ]),
            ),
        ]);
        assert_eq!(unknown_paths(&cfg), ["registry_auth[1].password"]);
        assert!(unknown_paths(&Value::object([("docker_host", Value::Null)])).is_empty());
    }
}
