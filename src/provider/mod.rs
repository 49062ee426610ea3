//! The provider: its configuration and what configuring it produces (the
//! types it serves are listed in `resources`).

pub mod config;
pub mod daemon;

pub use config::ProviderConfig;

use crate::registry::RegistryClient;

/// Expands a leading `~/` the way a shell would, since users copy paths from docs.
pub fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => std::path::PathBuf::from(p),
    }
}

/// What ConfigureProvider produces; shared by every operation after it.
pub struct ProviderData {
    pub config: ProviderConfig,
    /// One registry client for the whole run, so ECR tokens and bearer tokens are reused.
    pub registry: RegistryClient,
    /// Attribute paths of the provider block Terraform did not know yet;
    /// while any is, nothing may authenticate with the rest (see `Ctx::provider`).
    pub unknown: Vec<String>,
    /// The ECS client, made on first use (loading the AWS configuration
    /// reads profiles and may ask an instance role), then shared.
    ecs: tokio::sync::OnceCell<aws_sdk_ecs::Client>,
    /// The Docker daemons builds run on, each reached on first use.
    daemons: daemon::Daemons,
}

impl ProviderData {
    pub fn new(config: ProviderConfig) -> Self {
        let registry = RegistryClient::new(config.auth_settings());
        let daemons = daemon::Daemons::new(config.named_daemons());
        ProviderData {
            config,
            registry,
            unknown: Vec::new(),
            ecs: tokio::sync::OnceCell::new(),
            daemons,
        }
    }

    /// The daemon the provider block (or, where it says nothing, the
    /// environment and the docker CLI's current context) names, checked to
    /// answer. A failure is not kept: the next build tries again.
    pub async fn daemon(&self) -> Result<&crate::docker::Daemon, crate::docker::ConnectError> {
        self.daemons.get(crate::docker::DEFAULT_BUILDER).await
    }

    /// The builder name and daemon for each of `platforms` (see
    /// [`daemon::route`]), each daemon connected once, all at once. The
    /// first that cannot be reached fails it, with its builder's name.
    pub async fn builders_for(
        &self,
        platforms: &[crate::oci::Platform],
    ) -> Result<Vec<crate::publish::Builder<'_>>, (String, crate::docker::ConnectError)> {
        let names: Vec<&str> = platforms
            .iter()
            .map(|p| daemon::route(&self.config.builders, p))
            .collect();
        let mut distinct = names.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let connected = futures::future::join_all(
            distinct
                .iter()
                .map(|name| async move { (*name, self.daemons.get(name).await) }),
        )
        .await;
        let mut daemons = std::collections::BTreeMap::new();
        for (name, result) in connected {
            let daemon = result.map_err(|e| (name.to_string(), e))?;
            daemons.insert(name, daemon);
        }
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let daemon = *daemons.get(name)?;
                Some(crate::publish::Builder { name, daemon })
            })
            .collect())
    }

    /// The ECS client for the provider's `aws` block (one per run).
    pub async fn ecs_client(&self) -> aws_sdk_ecs::Client {
        self.ecs
            .get_or_init(|| crate::aws::ecs_client(&self.config.aws))
            .await
            .clone()
    }

    /// A provider configured with values not known yet: usable for nothing
    /// that talks to a registry, a daemon or AWS.
    pub fn not_known_yet(unknown: Vec<String>) -> Self {
        ProviderData {
            unknown,
            ..ProviderData::new(ProviderConfig::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_daemon_address_that_does_not_resolve_is_named_without_its_password() {
        let data = ProviderData::new(ProviderConfig {
            docker_host: Some("ssh://me:hunter2@build-box?x=1".into()),
            ..ProviderConfig::default()
        });
        let error = data
            .daemon()
            .await
            .err()
            .expect("an address with a query is refused");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("build-box"), "{shown}");
    }
}
