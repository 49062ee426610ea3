//! The one way a request to a registry is repeated and judged, for reads
//! (manifests, blobs, referrers) and writes (uploads, manifests, tags,
//! deletes) alike:
//! - [`Retrying::run`]: an operation tried again after a transient failure
//!   (the network, 429, 500, 502, 503, 504), waiting as the registry's
//!   `Retry-After` asks (capped) or with doubling backoff, stopped at once by
//!   cancellation, with one free retry after a refused authorization for a
//!   caller that can renew it;
//! - [`answer_error`]: what an answer with an unexpected status means, as a
//!   [`RegistryError`], with the wait the registry asked for and which
//!   credentials were sent (never the secret).
//!
//! The two sides differ only in their [`RetryPolicy`]: a read runs where a
//! tag may have just moved or at plan time, so it answers within seconds; a
//! write is part of an apply the user already waits on and is more patient.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::body::read_limited;
use super::error::{from_status, retry_after_header, RegistryError};

/// How often and how patiently transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// The policy of writes.
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The policy of reads: quicker, since a plan or refresh waits on them.
    pub const READ: RetryPolicy = RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(10),
    };
}

/// What an attempt came to.
pub(super) enum Attempt<T> {
    /// Done: a value or a final error.
    Done(Result<T, RegistryError>),
    /// An answer worth asking again (a read's 429 or 5xx, kept whole so the
    /// caller reads it after the last attempt), with the wait it asked for.
    Again(T, Option<Duration>),
}

impl<T> From<Result<T, RegistryError>> for Attempt<T> {
    fn from(result: Result<T, RegistryError>) -> Attempt<T> {
        Attempt::Done(result)
    }
}

/// One operation's retry loop.
pub(super) struct Retrying<'a> {
    pub policy: RetryPolicy,
    pub cancel: Option<&'a CancellationToken>,
    /// For the log lines: which registry is retried.
    pub registry: &'a str,
    /// Whether a transient error that outlasts every attempt says how many
    /// there were ([`RegistryError::Retried`]); reads report it as it came.
    pub count_attempts: bool,
}

impl Retrying<'_> {
    /// Runs `attempt` until it is done, fails for good or runs out of
    /// attempts. A first [`RegistryError::Unauthorized`] calls `renew` (for
    /// example to resolve credentials again, as an expired ECR token needs)
    /// and, when it returns true, tries again without counting an attempt.
    pub async fn run<T, F, Fut, R, RFut>(
        &self,
        mut attempt: F,
        mut renew: R,
    ) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
        R: FnMut() -> RFut,
        RFut: Future<Output = bool>,
    {
        let mut tried = 0;
        let mut renewed = false;
        let mut backoff = self.policy.first_backoff;
        loop {
            tried += 1;
            let outcome = match self.cancellable(attempt()).await {
                Some(outcome) => outcome,
                None => return Err(RegistryError::Cancelled),
            };
            let wait = match outcome {
                Attempt::Done(Ok(value)) => return Ok(value),
                Attempt::Done(Err(err @ RegistryError::Unauthorized { .. })) if !renewed => {
                    renewed = true;
                    if renew().await {
                        tried -= 1;
                        continue;
                    }
                    return Err(err);
                }
                Attempt::Done(Err(err)) if !err.is_transient() => return Err(err),
                Attempt::Done(Err(err)) => {
                    if tried >= self.policy.attempts {
                        return Err(self.exhausted(tried, err));
                    }
                    let registry = self.registry;
                    tracing::warn!(%registry, attempt = tried, error = %err, "retrying a registry request");
                    err.retry_after()
                        .map_or(backoff, |asked| asked.min(self.policy.max_backoff))
                }
                Attempt::Again(value, asked) => {
                    if tried >= self.policy.attempts {
                        return Ok(value);
                    }
                    let registry = self.registry;
                    tracing::debug!(%registry, attempt = tried, "asking the registry again");
                    asked.unwrap_or(backoff).min(self.policy.max_backoff)
                }
            };
            if self.cancellable(tokio::time::sleep(wait)).await.is_none() {
                return Err(RegistryError::Cancelled);
            }
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    fn exhausted(&self, attempts: u32, err: RegistryError) -> RegistryError {
        if self.count_attempts {
            RegistryError::Retried {
                attempts,
                source: Box::new(err),
            }
        } else {
            err
        }
    }

    /// `work`, or `None` when the operation is cancelled first.
    async fn cancellable<O>(&self, work: impl Future<Output = O>) -> Option<O> {
        match self.cancel {
            Some(cancel) => tokio::select! {
                _ = cancel.cancelled() => None,
                out = work => Some(out),
            },
            None => Some(work.await),
        }
    }
}

/// Answers worth asking again: rate limiting and passing server trouble.
pub(super) fn worth_retrying(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// What is read of an error answer's body, at most.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The error for an answer with an unexpected status, about `shown` (the
/// reference or blob asked for). `credentials` (which ones were sent, no
/// secret) is added to a refusal.
pub(super) async fn answer_error(
    response: reqwest::Response,
    registry: &str,
    shown: &str,
    credentials: Option<&str>,
) -> RegistryError {
    let status = response.status().as_u16();
    let asked = retry_after_header(response.headers());
    // Error bodies are small JSON envelopes or HTML pages; a broken or
    // oversized body is reported as empty rather than masking the status.
    let body = read_limited(response, MAX_ERROR_BODY)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    match from_status(status, &body, registry, shown) {
        RegistryError::Unauthorized { registry, detail } => RegistryError::Unauthorized {
            registry,
            detail: match credentials {
                Some(note) => format!("{detail} ({note})"),
                None => detail,
            },
        },
        RegistryError::Server {
            registry,
            status,
            detail,
            ..
        } => RegistryError::Server {
            registry,
            status,
            detail,
            retry_after: asked,
        },
        other => other,
    }
}
