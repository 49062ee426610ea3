//! The read side of the distribution API, spoken directly over reqwest:
//! `HEAD` and `GET` of manifests and `GET` of blobs, one connection pool per
//! registry host, and authorization that costs nothing once known (the
//! host's challenge is learnt from its first 401, bearer tokens come from
//! [`TokenCache`], so an open registry is never asked `GET /v2/` at all).
//!
//! What the bytes mean, digest checks and caching are the caller's
//! ([`super::client`]); this module only moves requests and classifies
//! answers.

use std::sync::RwLock;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth as OciAuth;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use super::auth::token::{Challenge, Token, TokenCache};
use super::client::{CONNECT_TIMEOUT, MANIFEST_MEDIA_TYPES, READ_TIMEOUT};
use super::error::{error_chain, from_status, RegistryError};

/// Token answers are small JSON documents.
const MAX_TOKEN_ANSWER: usize = 1024 * 1024;

/// Attempts per read, the first included, and how long to wait between them.
const READ_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(250);
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Answers worth asking again: rate limiting and passing server trouble.
const RETRIED_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// `Retry-After` in seconds (the HTTP-date form is rare from registries and
/// falls back to our own backoff).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::Duration::from_secs(seconds))
}

/// One registry host: its HTTP client (and so its connection pool), what its
/// challenge asks for once known, and its tokens.
pub(super) struct HostReader {
    http: reqwest::Client,
    base: Url,
    registry: String,
    challenge: RwLock<Option<Challenge>>,
    tokens: TokenCache,
}

/// One read: what to ask for, in which repository, with which credential.
pub(super) struct Read<'a> {
    pub method: Method,
    /// `manifests/<ref>` or `blobs/<digest>`.
    pub what: String,
    pub repository: &'a str,
    pub credential: &'a OciAuth,
}

impl HostReader {
    pub(super) fn new(
        host: &str,
        registry: &str,
        plain_http: bool,
        accept_invalid_certs: bool,
    ) -> Result<HostReader, RegistryError> {
        let scheme = if plain_http { "http" } else { "https" };
        let fail = |detail: String| RegistryError::Unreachable {
            registry: registry.into(),
            detail,
        };
        let base = Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| fail(format!("cannot form a URL for host {host:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tls_danger_accept_invalid_certs(accept_invalid_certs)
            .build()
            .map_err(|e| fail(format!("cannot set up an HTTP client: {}", error_chain(&e))))?;
        Ok(HostReader {
            http,
            base,
            registry: registry.into(),
            challenge: RwLock::new(None),
            tokens: TokenCache::default(),
        })
    }

    /// Sends `read` as [`HostReader::send_authorized`] does, again after a
    /// transient failure (the network, 429, 500, 502, 503, 504): up to
    /// [`READ_ATTEMPTS`] times, waiting as `Retry-After` says (capped) or with
    /// doubling backoff. Reads run after the tags may already have moved
    /// (verify) or at plan (data sources, refresh), where one 503 must not
    /// fail the run. Never a 4xx other than 429: those answers are final.
    pub(super) async fn send(&self, read: &Read<'_>) -> Result<reqwest::Response, RegistryError> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..READ_ATTEMPTS {
            let wait = match self.send_authorized(read).await {
                Ok(answer) if RETRIED_STATUSES.contains(&answer.status().as_u16()) => {
                    retry_after(answer.headers()).unwrap_or(backoff)
                }
                Err(e) if e.is_transient() => backoff,
                done => return done,
            };
            tracing::debug!(registry = %self.registry, attempt, wait_ms = wait.as_millis() as u64, "retrying a registry read");
            tokio::time::sleep(wait.min(MAX_WAIT)).await;
            backoff = (backoff * 2).min(MAX_WAIT);
        }
        self.send_authorized(read).await
    }

    /// Sends `read`, authorized as the host's challenge asks; on a 401 learns
    /// (or re-learns) the challenge, drops a refused token and tries once more.
    async fn send_authorized(&self, read: &Read<'_>) -> Result<reqwest::Response, RegistryError> {
        let scope = format!("repository:{}:pull", read.repository);
        let sent = self.authorization(&scope, read.credential).await?;
        let answer = self.once(read, sent.as_ref()).await?;
        if answer.status() != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let Some(challenge) = answer
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
        else {
            return Ok(answer);
        };
        *self.challenge.write().unwrap_or_else(|p| p.into_inner()) = Some(challenge);
        if let Some(token) = sent.as_ref().and_then(bearer_value) {
            self.tokens.forget(&scope, &token).await;
        }
        let retry = self.authorization(&scope, read.credential).await?;
        if retry.is_none() || retry == sent {
            return Ok(answer);
        }
        self.once(read, retry.as_ref()).await
    }

    /// The classified error for an answer that was not a success.
    pub(super) async fn failure(&self, answer: reqwest::Response, shown: &str) -> RegistryError {
        let status = answer.status().as_u16();
        // Error bodies are small envelopes or HTML pages; a body that breaks
        // off is reported as empty rather than masking the status.
        let body = read_limited(answer, 64 * 1024).await.unwrap_or_default();
        from_status(
            status,
            &String::from_utf8_lossy(&body),
            &self.registry,
            shown,
        )
    }

    pub(super) fn unreachable(&self, err: &reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            detail: error_chain(err),
        }
    }

    async fn once(
        &self,
        read: &Read<'_>,
        authorization: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, RegistryError> {
        let path = format!("v2/{}/{}", read.repository, read.what);
        let url = self.base.join(&path).map_err(|e| RegistryError::Rejected {
            registry: self.registry.clone(),
            detail: format!("cannot form a URL for {path:?}: {e}"),
        })?;
        let mut request = self.http.request(read.method.clone(), url);
        if read.what.starts_with("manifests/") {
            request = request.header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
        }
        // NOTE: reqwest drops Authorization when a redirect leaves the host
        // (blob GETs are redirected to object storage), so it goes no further.
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        request.send().await.map_err(|e| self.unreachable(&e))
    }

    /// What to send for `scope`: nothing until the host asked, then basic
    /// credentials or a (cached) token, as its challenge says.
    async fn authorization(
        &self,
        scope: &str,
        credential: &OciAuth,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        if let OciAuth::Bearer(token) = credential {
            // A registry token from the docker config goes as is.
            return header(&format!("Bearer {token}"), &self.registry).map(Some);
        }
        let challenge = self
            .challenge
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match (challenge, credential) {
            (None, _) | (Some(Challenge::Basic), OciAuth::Anonymous) => Ok(None),
            (Some(Challenge::Basic), OciAuth::Basic(user, password)) => {
                header(&basic(user, password), &self.registry).map(Some)
            }
            (Some(Challenge::Bearer { realm, service }), _) => {
                let token = self
                    .tokens
                    .get_or_fetch(scope, || {
                        self.fetch_token(&realm, service.as_deref(), scope, credential)
                    })
                    .await?;
                header(&format!("Bearer {token}"), &self.registry).map(Some)
            }
            (Some(Challenge::Basic), OciAuth::Bearer(_)) => Ok(None),
        }
    }

    /// The distribution token spec: `GET realm?service=…&scope=…`, with basic
    /// credentials when we have them, anonymous otherwise.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credential: &OciAuth,
    ) -> Result<Token, RegistryError> {
        let refused = |detail: String| RegistryError::Unauthorized {
            registry: self.registry.clone(),
            detail,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| refused(format!("the token service {realm:?} is not a URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let mut request = self.http.get(url);
        if let OciAuth::Basic(user, password) = credential {
            request = request.header(
                AUTHORIZATION,
                header(&basic(user, password), &self.registry)?,
            );
        }
        let answer = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = answer.status();
        let body = read_limited(answer, MAX_TOKEN_ANSWER)
            .await
            .map_err(|e| refused(format!("reading the token service's answer: {e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(
                match from_status(status.as_u16(), &text, &self.registry, scope) {
                    e @ RegistryError::Server { .. } => e,
                    _ => {
                        let said: String = text.trim().chars().take(300).collect();
                        refused(format!("the token service answered HTTP {status}: {said}"))
                    }
                },
            );
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let parsed: Answer = serde_json::from_slice(&body)
            .map_err(|e| refused(format!("the token service's answer is not a token: {e}")))?;
        let value = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("the token service answered without a token".into()))?;
        Ok(Token::new(value, parsed.expires_in))
    }
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn bearer_value(value: &HeaderValue) -> Option<String> {
    value
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

/// A sensitive header value: hyper keeps it out of its own debug output.
fn header(text: &str, registry: &str) -> Result<HeaderValue, RegistryError> {
    let mut value = HeaderValue::from_str(text).map_err(|_| RegistryError::Unauthorized {
        registry: registry.into(),
        detail: "the credential contains characters not allowed in an HTTP header".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The body of `answer`, refused once it passes `limit` bytes.
pub(super) async fn read_limited(
    mut answer: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    if answer
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(format!(
            "the answer is larger than the {limit} bytes allowed"
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!(
                "the answer is larger than the {limit} bytes allowed"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
