//! The `provider "stevedore"` block: its schema, and raw value → validated
//! settings, once, so deeper code never re-reads config values.

use crate::aws::AwsSettings;
use crate::diag::{Diagnostic, Diagnostics};
use crate::registry::{AuthSettings, RegistryAuth};
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::value::{AttrPath, Type, Value};
use std::path::PathBuf;

pub fn schema() -> Schema {
    let auth = Block::new("Credentials and transport settings for one registry.")
        .attr(Attribute::required("address", Type::String, "Registry host and optional port, e.g. `127.0.0.1:5000` or `ghcr.io`."))
        .attr(Attribute::optional("username", Type::String, "User name for basic authentication."))
        .attr(Attribute::optional("password", Type::String, "Password or token for basic authentication.").sensitive())
        .attr(Attribute::optional("insecure", Type::Bool, "Skip TLS certificate verification for this registry, and allow plain HTTP when it does not speak TLS (HTTPS is tried first). Loopback registries may use plain HTTP without it; their certificates are still checked."))
        .attr(Attribute::optional("ecr", Type::Bool, "Fetch credentials from ECR `GetAuthorizationToken` for this address (automatic for `*.dkr.ecr.*.amazonaws.com`)."));
    let endpoints = Block::new("Endpoint overrides, for LocalStack or moto.")
        .attr(Attribute::optional(
            "ecs",
            Type::String,
            "ECS endpoint URL.",
        ))
        .attr(Attribute::optional(
            "ecr",
            Type::String,
            "ECR endpoint URL.",
        ));
    let aws = Block::new(
        "AWS settings for ECR credentials and ECS. Unset fields follow the AWS SDK's own chain.",
    )
    .attr(Attribute::optional(
        "region",
        Type::String,
        "AWS region; default from `AWS_REGION`, the profile, ...",
    ))
    .attr(Attribute::optional(
        "profile",
        Type::String,
        "Named profile from the shared AWS config files.",
    ))
    .block(NestedBlock::new("endpoints", Nesting::Single, endpoints).max(1));
    Schema::new("The stevedore provider builds container images for the platforms you name, pushes clean manifests, verifies them, and redeploys ECS services.")
        .attr(Attribute::optional("docker_host", Type::String, "Docker daemon address; default `DOCKER_HOST`, then `unix:///var/run/docker.sock`."))
        .attr(Attribute::optional("docker_cert_path", Type::String, "Directory with `ca.pem`, `cert.pem` and `key.pem` for a TLS daemon (the `DOCKER_CERT_PATH` convention)."))
        .attr(Attribute::optional("docker_config_file", Type::String, "Docker CLI config file whose `auths`, `credHelpers` and `credsStore` are honoured; default `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`."))
        .block(NestedBlock::new("registry_auth", Nesting::List, auth))
        .block(NestedBlock::new("aws", Nesting::Single, aws).max(1))
}

#[derive(Clone, Debug, Default)]
pub struct ProviderConfig {
    pub docker_host: Option<String>,
    pub docker_cert_path: Option<PathBuf>,
    pub docker_config_file: Option<PathBuf>,
    pub registry_auth: Vec<RegistryAuth>,
    pub aws: AwsSettings,
}

fn opt_str(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .as_str()
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// Expands a leading `~/` the way a shell would, since users copy paths from docs.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

/// Static checks; unknown values (config depending on other resources) pass.
pub fn validate(config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if let Some(blocks) = config.get("registry_auth").as_list() {
        for (i, b) in blocks.iter().enumerate() {
            let at = AttrPath::attr("registry_auth").then_index(i);
            if let Some(addr) = b.get("address").as_str() {
                if let Err(why) = check_address(addr) {
                    diags.push(
                        Diagnostic::error("Invalid Registry Address", why)
                            .at(at.then_attr("address")),
                    );
                }
            }
            if b.get("password").as_str().is_some() && b.get("username").is_null() {
                diags.push(
                    Diagnostic::error(
                        "Password Without Username",
                        "registry_auth sets a password but no username; set `username` as well (for tokens, use the user name the registry expects, e.g. `AWS` for ECR or `oauth2accesstoken` for GCR).",
                    )
                    .at(at.then_attr("username")),
                );
            }
        }
    }
    if let Some(h) = config.get("docker_host").as_str() {
        if let Err(why) = check_docker_host(h) {
            diags.push(Diagnostic::attr_error(
                "docker_host",
                "Invalid Docker Host",
                why,
            ));
        }
    }
    let endpoints = config.get("aws").get("endpoints");
    for service in ["ecs", "ecr"] {
        let Some(url) = endpoints.get(service).as_str() else {
            continue;
        };
        let ok = reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !ok {
            let at = AttrPath::attr("aws")
                .then_attr("endpoints")
                .then_attr(service);
            diags.push(Diagnostic::error("Invalid Endpoint", format!("aws.endpoints.{service} = {url:?} is not an http(s) URL; use e.g. \"http://127.0.0.1:5055\" for moto or LocalStack.")).at(at));
        }
    }
    diags
}

/// The daemon address schemes the provider can reach; anything else fails
/// here, at validate, rather than at the first apply.
pub const DOCKER_HOST_SCHEMES: [&str; 4] = ["unix://", "tcp://", "http://", "https://"];

fn check_docker_host(h: &str) -> Result<(), String> {
    let fix =
        "use `unix:///var/run/docker.sock` or `tcp://host:2376` (with `docker_cert_path` for TLS)";
    if h.starts_with("ssh://") {
        return Err(format!(
            "{h:?}: ssh:// daemons are not supported yet; forward the daemon's socket instead \
             (`ssh -NL /tmp/docker.sock:/var/run/docker.sock user@host`) and set \
             docker_host = \"unix:///tmp/docker.sock\", or {fix}"
        ));
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
        Err(format!("{addr:?} is not a registry address; use host[:port] such as `127.0.0.1:5000` or `123456789012.dkr.ecr.us-east-1.amazonaws.com`, without a repository path."))
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
    let registry_auth = config
        .get("registry_auth")
        .as_list()
        .unwrap_or(&[])
        .iter()
        .map(|b| RegistryAuth {
            address: b.get("address").as_str().unwrap_or_default().to_string(),
            username: opt_str(b, "username"),
            password: b.get("password").as_str().map(str::to_string),
            insecure: b.get("insecure").as_bool().unwrap_or(false),
            ecr: b.get("ecr").as_bool().unwrap_or(false),
        })
        .collect();
    let aws_block = config.get("aws");
    let endpoints = aws_block.get("endpoints");
    Ok(ProviderConfig {
        docker_host: opt_str(config, "docker_host"),
        docker_cert_path: opt_str(config, "docker_cert_path").map(|p| expand_home(&p)),
        docker_config_file: opt_str(config, "docker_config_file").map(|p| expand_home(&p)),
        registry_auth,
        aws: AwsSettings {
            region: opt_str(aws_block, "region"),
            profile: opt_str(aws_block, "profile"),
            ecs_endpoint: opt_str(endpoints, "ecs"),
            ecr_endpoint: opt_str(endpoints, "ecr"),
        },
    })
}

impl ProviderConfig {
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
        Value::object([
            ("address", Value::string(addr)),
            ("username", Value::opt_string(user)),
            ("password", Value::opt_string(pass)),
            ("insecure", Value::Null),
            ("ecr", Value::Null),
        ])
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
            ("ssh://me@build-box", "ssh:// daemons are not supported yet"),
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
        ] {
            let cfg = Value::object([("docker_host", Value::string(host))]);
            assert!(!validate(&cfg).has_errors(), "{host}");
        }
    }

    #[test]
    fn unknown_values_are_listed_by_path() {
        let cfg = Value::object([
            ("docker_host", Value::string("unix:///x")),
            (
                "registry_auth",
                Value::List(vec![auth("h:1", Some("u"), None), {
                    let mut a = auth("h:2", Some("u"), None);
                    a.set("password", Value::Unknown);
                    a
                }]),
            ),
        ]);
        assert_eq!(unknown_paths(&cfg), ["registry_auth[1].password"]);
        assert!(unknown_paths(&Value::object([("docker_host", Value::Null)])).is_empty());
    }
}
