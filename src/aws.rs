//! AWS SDK configuration shared by the ECR token fetcher and the ECS client:
//! the SDK's default chain (environment, profiles, SSO, instance roles) plus the
//! provider's `aws { region, profile, endpoints }` block.

use aws_config::{BehaviorVersion, Region};

/// The provider's `aws` block, validated. Empty fields mean "the SDK chain decides".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Endpoint override for ECS (LocalStack, moto).
    pub ecs_endpoint: Option<String>,
    /// Endpoint override for ECR (LocalStack, moto).
    pub ecr_endpoint: Option<String>,
}

/// Loads the shared SDK configuration for these settings.
pub async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// An ECR client honouring the `endpoints.ecr` override.
pub async fn ecr_client(settings: &AwsSettings) -> aws_sdk_ecr::Client {
    let shared = sdk_config(settings).await;
    let mut conf = aws_sdk_ecr::config::Builder::from(&shared);
    if let Some(url) = &settings.ecr_endpoint {
        conf = conf.endpoint_url(url);
    }
    aws_sdk_ecr::Client::from_conf(conf.build())
}

/// An ECS client honouring the `endpoints.ecs` override.
pub async fn ecs_client(settings: &AwsSettings) -> aws_sdk_ecs::Client {
    let shared = sdk_config(settings).await;
    let mut conf = aws_sdk_ecs::config::Builder::from(&shared);
    if let Some(url) = &settings.ecs_endpoint {
        conf = conf.endpoint_url(url);
    }
    aws_sdk_ecs::Client::from_conf(conf.build())
}
