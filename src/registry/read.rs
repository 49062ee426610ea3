//! The read side of the distribution API, spoken directly over reqwest:
//! `HEAD` and `GET` of manifests and `GET` of blobs through the host's
//! [`RegistryHost`] (its connection pool, scheme and tokens), authorized at
//! no cost once known: the challenge is learnt from the first 401, so an
//! open registry that speaks HTTPS is never asked `GET /v2/` at all.
//!
//! What the bytes mean, digest checks and caching are the caller's
//! ([`super::client`]); this module only moves requests and classifies
//! answers.

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode};

use super::auth::Credential;
use super::client::MANIFEST_MEDIA_TYPES;
use super::error::{retry_after_header, RegistryError};
use super::host::{challenge_of, RegistryHost};
use super::pipeline::{answer_error, worth_retrying, Attempt, RetryPolicy, Retrying};
use crate::oci::media_types::OCI_INDEX;

/// One read: what to ask for, in which repository, with which credential.
pub(super) struct Read<'a> {
    pub method: Method,
    /// `manifests/<ref>` or `blobs/<digest>`.
    pub what: String,
    pub repository: &'a str,
    pub credential: &'a Credential,
}

impl RegistryHost {
    /// Sends `read` as [`RegistryHost::send_authorized`] does, again after a
    /// transient failure as [`RetryPolicy::READ`] allows (see
    /// [`super::pipeline`]): reads run after the tags may already have moved
    /// (verify) or at plan (data sources, refresh), where one 503 must not
    /// fail the run. Never a 4xx other than 429: those answers are final.
    /// After the last attempt the answer is returned as it came, for the
    /// caller to judge.
    pub(super) async fn read(&self, read: &Read<'_>) -> Result<reqwest::Response, RegistryError> {
        let retrying = Retrying {
            policy: RetryPolicy::READ,
            cancel: None,
            registry: &self.registry,
            count_attempts: false,
        };
        let attempt = || async {
            match self.send_authorized(read).await {
                Ok(answer) if worth_retrying(answer.status()) => {
                    let asked = retry_after_header(answer.headers());
                    Attempt::Again(answer, asked)
                }
                done => Attempt::Done(done),
            }
        };
        // A refusal was already answered inside: the challenge re-learnt
        // and the token asked again.
        retrying.run(attempt, || async { false }).await
    }

    /// Sends `read`, authorized as the host's challenge asks; on a 401 learns
    /// (or re-learns) the challenge, drops a refused token and tries once more.
    async fn send_authorized(&self, read: &Read<'_>) -> Result<reqwest::Response, RegistryError> {
        let scopes = [format!("repository:{}:pull", read.repository)];
        let sent = self.authorization(&scopes, read.credential).await?;
        let answer = self.once(read, sent.as_ref()).await?;
        if answer.status() != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let Some(challenge) = challenge_of(&answer) else {
            return Ok(answer);
        };
        self.set_challenge(challenge);
        if let Some(refused) = &sent {
            self.forget_token(&scopes, refused).await;
        }
        let retry = self.authorization(&scopes, read.credential).await?;
        if retry.is_none() || retry == sent {
            return Ok(answer);
        }
        self.once(read, retry.as_ref()).await
    }

    /// The classified error for an answer that was not a success.
    pub(super) async fn failure(&self, answer: reqwest::Response, shown: &str) -> RegistryError {
        answer_error(answer, &self.registry, shown, None).await
    }

    async fn once(
        &self,
        read: &Read<'_>,
        authorization: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, RegistryError> {
        let path = format!("v2/{}/{}", read.repository, read.what);
        let base = self.base()?;
        base.join(&path).map_err(|e| RegistryError::Rejected {
            registry: self.registry.clone(),
            detail: format!("cannot form a URL for {path:?}: {e}"),
        })?;
        self.send(|base| {
            let url = base.join(&path).unwrap_or(base);
            let mut request = self.http.request(read.method.clone(), url);
            if read.what.starts_with("manifests/") {
                request = request.header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
            } else if read.what.starts_with("referrers/") {
                // A referrers list is always an OCI index.
                request = request.header(ACCEPT, OCI_INDEX);
            }
            // NOTE: reqwest drops Authorization when a redirect leaves the
            // host (blob GETs are redirected to object storage).
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, value.clone());
            }
            request.send()
        })
        .await
    }
}
