//! AWS SDK configuration shared by the ECR token fetcher and the ECS client:
//! the SDK's default chain (environment, profiles, SSO, instance roles) plus the
//! provider's `aws { region, profile, endpoints }` block.

use std::error::Error;
use std::fmt::Debug;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

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

/// Every AWS call is bounded: connecting, each attempt, and the whole call
/// with the SDK's retries. ECS and ECR answer in well under a second; a
/// minute means something between us and them is holding the request.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(30))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(90))
        .build()
}

/// The SDK's HTTPS client, on the same crypto as everything else (*ring*,
/// see `crate::crypto`): the SDK has none of its own here, since its
/// default client would bring aws-lc. Every SDK client must be given it.
pub fn https_client() -> aws_sdk_ecs::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Loads the shared SDK configuration for these settings.
pub async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .http_client(https_client());
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

/// An AWS SDK error as one readable line: `Code: message` for an error the
/// service answered, else the chain of causes (`dispatch failure: io error:
/// ... Connection refused`). Not `DisplayErrorContext`, whose tail is the
/// `Debug` dump of the whole error, raw HTTP response included, which users
/// then read in their diagnostics.
pub fn sdk_error_text<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
    R: Debug,
{
    if let SdkError::ServiceError(service) = err {
        let e = service.err();
        match (e.code(), e.message()) {
            (Some(code), Some(message)) => return format!("{code}: {message}"),
            (Some(code), None) => return code.to_string(),
            _ => {}
        }
    }
    crate::diag::error_chain(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::error::ErrorMetadata;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesError;

    #[test]
    fn service_errors_read_as_code_and_message() {
        let meta = ErrorMetadata::builder()
            .code("AccessDeniedException")
            .message("not authorized to perform: ecs:DescribeServices")
            .build();
        let err = SdkError::service_error(DescribeServicesError::generic(meta), "raw response");
        assert_eq!(
            sdk_error_text(&err),
            "AccessDeniedException: not authorized to perform: ecs:DescribeServices"
        );
    }

    #[test]
    fn other_errors_read_as_their_chain_without_debug_dumps() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let err: SdkError<DescribeServicesError, &str> =
            SdkError::dispatch_failure(aws_sdk_ecs::error::ConnectorError::io(Box::new(io)));
        let text = sdk_error_text(&err);
        assert!(text.starts_with("dispatch failure: "), "{text}");
        assert!(text.ends_with("Connection refused"), "{text}");
        assert!(!text.contains("ConnectorError"), "{text}");
    }
}
