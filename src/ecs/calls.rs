//! How SDK errors become `EcsError`s, and which of them are worth another try.
//!
//! NOTE: ECS does not model `ThrottlingException` per operation, so we classify
//! by the error code in the response envelope, the same way the SDK's own
//! retry classifier does.

use std::error::Error;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};

use super::error::EcsError;

/// The service an API call was about, so "not found" errors can name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
}

/// What to do about a failed call.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Throttling, a 5xx or a network hiccup: the same request may well succeed later.
    Retry(EcsError),
    Fatal(EcsError),
}

const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

pub(crate) fn classify<E, R>(
    operation: &'static str,
    target: Target<'_>,
    err: SdkError<E, R>,
) -> Outcome
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    let code = err.code().unwrap_or_default().to_string();
    let cluster = target.cluster.to_string();
    let service = target.service.to_string();
    match code.as_str() {
        "ServiceNotFoundException" | "ServiceNotActiveException" => {
            return Outcome::Fatal(EcsError::ServiceNotFound { cluster, service })
        }
        "ClusterNotFoundException" => return Outcome::Fatal(EcsError::ClusterNotFound { cluster }),
        c if THROTTLING_CODES.contains(&c) => {
            return Outcome::Retry(EcsError::Throttled {
                operation,
                attempts: 1,
            })
        }
        _ => {}
    }
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        // ECS reports its own faults as ServerException (HTTP 500).
        SdkError::ServiceError(_) => code == "ServerException",
        _ => false,
    };
    let api = EcsError::Api {
        operation,
        message: crate::aws::sdk_error_text(&err),
    };
    if transient {
        Outcome::Retry(api)
    } else {
        Outcome::Fatal(api)
    }
}

/// Retries throttled calls a few times with doubling pauses, on top of what the
/// SDK's standard retry already did. Used for the one-shot calls (describe,
/// update); the deployment poller has its own, deadline-bound loop.
pub(crate) async fn retry_throttled<T, E, R, F, Fut>(
    operation: &'static str,
    target: Target<'_>,
    mut call: F,
) -> Result<T, EcsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    const ATTEMPTS: u32 = 5;
    let mut pause = Duration::from_millis(250);
    for attempt in 1..=ATTEMPTS {
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) => match classify(operation, target, err) {
                Outcome::Retry(EcsError::Throttled { .. }) if attempt < ATTEMPTS => {
                    tracing::debug!(operation, attempt, "ECS throttled the call; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Outcome::Retry(EcsError::Throttled { .. }) => {
                    return Err(EcsError::Throttled {
                        operation,
                        attempts: attempt,
                    })
                }
                Outcome::Retry(err) | Outcome::Fatal(err) => return Err(err),
            },
        }
    }
    Err(EcsError::Throttled {
        operation,
        attempts: ATTEMPTS,
    })
}
