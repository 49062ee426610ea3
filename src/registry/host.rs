//! One registry host as both the read and the push path reach it: its HTTP
//! client (one connection pool, the CAs the user trusts for it), which
//! scheme it speaks, what its auth challenge asks for, and its bearer
//! tokens, fetched once per scope and reused until they lapse.
//!
//! Scheme: HTTPS, always, for a registry that is neither loopback nor marked
//! `insecure`. For those two, HTTPS is tried first and plain HTTP only when
//! the host does not speak TLS at all (as the Docker daemon does for its
//! insecure registries), settled by the first request of the run that gets
//! an answer. A loopback registry still has its certificate checked;
//! `insecure` skips that too.
//!
//! Trust: the platform's store plus the host's Docker `certs.d` CAs.
//! Certificates go unchecked only on hosts marked `insecure`: a token
//! service or a redirect target on another host keeps its check (see
//! `auth::trust`).
//!
//! Tokens come from our own exchange: one per scope for the whole run, and
//! a mount's token covers its source too. Kept in memory only, never shown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

use super::attempt::redacted;
use super::auth::token::{Challenge, Token, TokenCache};
use super::auth::trust;
use super::auth::Credential;
use super::body::read_limited;
use super::error::{error_chain, from_status, RegistryError};

pub(super) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);
pub(super) const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How long the first HTTPS attempt on a host that may fall back to plain
/// HTTP may take to answer.
const TLS_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

/// Token answers are small JSON documents.
const MAX_TOKEN_ANSWER: usize = 1024 * 1024;

/// A registry host for the whole run.
pub(super) struct RegistryHost {
    pub(super) http: reqwest::Client,
    host: String,
    pub(super) registry: String,
    /// Plain HTTP may be used when the host does not speak TLS.
    may_fall_back: bool,
    /// The base URL once a request got an answer through it.
    settled: OnceLock<Url>,
    /// Held while the scheme is found out: requests made at once (ten refreshes)
    /// wait for one probe instead of each trying HTTPS on a plain registry.
    probing: tokio::sync::Mutex<()>,
    probe_failed: AtomicBool,
    challenge: RwLock<Option<Challenge>>,
    /// `GET /v2/` was asked (before a push), so an open
    /// registry is not asked again.
    asked: AtomicBool,
    tokens: TokenCache,
}

impl RegistryHost {
    pub(super) fn new(
        host: &str,
        registry: &str,
        may_fall_back: bool,
        insecure: &[String],
    ) -> Result<RegistryHost, RegistryError> {
        let fail = |detail: String| RegistryError::Unreachable {
            registry: registry.into(),
            detail,
        };
        // reqwest takes the process's crypto provider; a library caller may
        // not have installed it as main does.
        crate::crypto::install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT);
        let roots = trust::certs_d_roots(host).map_err(fail)?;
        if !insecure.is_empty() {
            // The client also reaches token services and redirect targets on other hosts.
            builder = builder
                .tls_backend_preconfigured(trust::client_config(roots, insecure).map_err(fail)?);
        } else if !roots.is_empty() {
            let roots = roots.iter().map(|der| reqwest::Certificate::from_der(der));
            let roots = roots.collect::<Result<Vec<_>, _>>();
            builder = builder.tls_certs_merge(
                roots.map_err(|e| fail(format!("a certs.d CA certificate for {host}: {e}")))?,
            );
        }
        let http = builder
            .build()
            .map_err(|e| fail(format!("cannot set up an HTTP client: {}", error_chain(&e))))?;
        Ok(RegistryHost {
            http,
            host: host.into(),
            registry: registry.into(),
            may_fall_back,
            settled: OnceLock::new(),
            probing: tokio::sync::Mutex::new(()),
            probe_failed: AtomicBool::new(false),
            challenge: RwLock::new(None),
            asked: AtomicBool::new(false),
            tokens: TokenCache::default(),
        })
    }

    /// `scheme://host[:port]/`: HTTPS until a request settled otherwise.
    pub(super) fn base(&self) -> Result<Url, RegistryError> {
        match self.settled.get() {
            Some(url) => Ok(url.clone()),
            None => self.url_with("https"),
        }
    }

    fn url_with(&self, scheme: &str) -> Result<Url, RegistryError> {
        Url::parse(&format!("{scheme}://{}/", self.host)).map_err(|e| RegistryError::Rejected {
            registry: self.registry.clone(),
            detail: format!("cannot form a URL for host {:?}: {e}", self.host),
        })
    }

    /// Sends the request `build` makes from a base URL. While the scheme is
    /// not settled on a host that may fall back, a request that could not
    /// connect over HTTPS is sent again over plain HTTP; whichever got an
    /// answer settles the scheme. A host whose certificate we refuse (an
    /// unknown CA) speaks TLS, so it is never spoken to in plain text: the
    /// certificate error, with how to trust the CA, is what the user sees.
    pub(super) async fn send<F, Fut>(&self, build: F) -> Result<reqwest::Response, RegistryError>
    where
        F: Fn(Url) -> Fut,
        Fut: Future<Output = Result<reqwest::Response, reqwest::Error>>,
    {
        if let Some(url) = self.settled.get() {
            return build(url.clone()).await.map_err(|e| self.unreachable(&e));
        }
        let https = self.url_with("https")?;
        if !self.may_fall_back {
            let answer = build(https.clone()).await;
            return self.settle_tls(https, answer);
        }
        let probing = self.probing.lock().await;
        if let Some(url) = self.settled.get() {
            return build(url.clone()).await.map_err(|e| self.unreachable(&e));
        }
        // After a probe that reached neither scheme, waiting in line would
        // only add one timeout per request: the rest try at once.
        let _probing = (!self.probe_failed.load(Ordering::Relaxed)).then_some(probing);
        // A plain-HTTP server that waits for a request line would hold our
        // TLS hello until the connect timeout; the first answer is bounded.
        let tls_failure = match tokio::time::timeout(TLS_PROBE, build(https.clone())).await {
            Ok(Err(e)) if e.is_connect() && !is_certificate_error(&e) => {
                error_chain(&e.without_url())
            }
            Ok(answer) => return self.settle_tls(https, answer),
            Err(_) => format!("no TLS answer within {}s", TLS_PROBE.as_secs()),
        };
        let http = self.url_with("http")?;
        match build(http.clone()).await {
            Ok(answer) => {
                tracing::debug!(registry = %self.registry, "the registry speaks plain HTTP");
                let _ = self.settled.set(http);
                Ok(answer)
            }
            Err(plain) => {
                self.probe_failed.store(true, Ordering::Relaxed);
                Err(RegistryError::Unreachable {
                    registry: self.registry.clone(),
                    detail: format!(
                        "over HTTPS: {tls_failure}; over plain HTTP: {}",
                        error_chain(&plain.without_url())
                    ),
                })
            }
        }
    }

    /// The outcome of an HTTPS attempt: an answer settles the scheme; a
    /// certificate we refuse says how to trust the CA.
    fn settle_tls(
        &self,
        https: Url,
        answer: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, RegistryError> {
        match answer {
            Ok(answer) => {
                let _ = self.settled.set(https);
                Ok(answer)
            }
            Err(e) => {
                let mut failed = self.unreachable(&e);
                if let RegistryError::Unreachable { detail, .. } = &mut failed {
                    if is_certificate_error(&e) {
                        detail.push_str(TRUST_HINT);
                    }
                }
                Err(failed)
            }
        }
    }

    /// Records the challenge a `/v2/` answer carries, if any.
    fn learn(&self, answer: &reqwest::Response) {
        self.asked.store(true, Ordering::Release);
        if answer.status() == StatusCode::UNAUTHORIZED {
            if let Some(challenge) = challenge_of(answer) {
                self.set_challenge(challenge);
            }
        }
    }

    pub(super) fn set_challenge(&self, challenge: Challenge) {
        *self.challenge.write().unwrap_or_else(|p| p.into_inner()) = Some(challenge);
    }

    /// Learns the challenge before a push, which nearly always needs
    /// credentials: one `GET /v2/` per host and run, none once known.
    pub(super) async fn ensure_challenge(&self) -> Result<(), RegistryError> {
        if self.asked.load(Ordering::Acquire) || self.known_challenge().is_some() {
            return Ok(());
        }
        let answer = self
            .send(|base| self.http.get(base.join("v2/").unwrap_or(base)).send())
            .await?;
        self.learn(&answer);
        Ok(())
    }

    fn known_challenge(&self) -> Option<Challenge> {
        self.challenge
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets the challenge and every token (the credential changed, or
    /// the registry refused what we sent): the next request learns anew.
    pub(super) fn forget_auth(&self) {
        *self.challenge.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.asked.store(false, Ordering::Release);
        self.tokens.clear();
    }

    pub(super) async fn forget_token(&self, scopes: &[String], refused: &HeaderValue) {
        if let Some(token) = bearer_value(refused) {
            self.tokens.forget(&scopes.join(" "), &token).await;
        }
    }

    /// A transport failure, the URL it names redacted: a blob GET may have
    /// been redirected to a presigned URL whose query is a credential.
    pub(super) fn unreachable(&self, err: &reqwest::Error) -> RegistryError {
        let mut detail = error_chain(err);
        if let Some(url) = err.url() {
            detail = detail.replace(url.as_str(), &redacted(url));
        }
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            detail,
        }
    }

    /// What to send for `scopes`: nothing until the host asked, then basic
    /// credentials or a (cached) token for exactly those scopes.
    pub(super) async fn authorization(
        &self,
        scopes: &[String],
        credential: &Credential,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        // NOTE: Docker trades an identity token for an access token with an
        // OAuth2 refresh-token grant; we send it as a bearer token as is,
        // which registries issuing directly usable tokens accept.
        if let Credential::Bearer { token } | Credential::IdentityToken { token } = credential {
            // A registry token from the docker config goes as is.
            return header(&format!("Bearer {token}"), &self.registry).map(Some);
        }
        match (self.known_challenge(), credential) {
            (None, _) | (Some(Challenge::Basic), Credential::Anonymous) => Ok(None),
            (Some(Challenge::Basic), Credential::Basic { username, password }) => {
                header(&basic(username, password), &self.registry).map(Some)
            }
            (Some(Challenge::Bearer { realm, service }), _) => {
                let token = self
                    .tokens
                    .get_or_fetch(&scopes.join(" "), || {
                        self.fetch_token(&realm, service.as_deref(), scopes, credential)
                    })
                    .await?;
                header(&format!("Bearer {token}"), &self.registry).map(Some)
            }
            (Some(Challenge::Basic), _) => Ok(None),
        }
    }

    /// The distribution token spec: `GET realm?service=…&scope=…&scope=…`,
    /// with basic credentials when we have them, anonymous otherwise.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credential: &Credential,
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
            if let Credential::Basic { username, .. } = credential {
                query.append_pair("account", username);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
        }
        tracing::debug!(registry = %self.registry, scopes = %scopes.join(" "), "fetching a registry token");
        let mut request = self.http.get(url);
        if let Credential::Basic { username, password } = credential {
            request = request.header(
                AUTHORIZATION,
                header(&basic(username, password), &self.registry)?,
            );
        }
        let answer = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = answer.status();
        let body = read_limited(answer, MAX_TOKEN_ANSWER)
            .await
            .map_err(|e| refused(format!("the token service's answer: {e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let asked = scopes.join(" ");
            return Err(
                match from_status(status.as_u16(), &text, &self.registry, &asked) {
                    // Rate limits and server trouble are transient, not bad credentials.
                    e @ RegistryError::Server { .. } => e,
                    _ => {
                        let said: String = text.trim().chars().take(300).collect();
                        refused(format!(
                            "the token service refused the credentials (HTTP {status}): {said}"
                        ))
                    }
                },
            );
        }
        Token::from_answer(&body).map_err(refused)
    }
}

const TRUST_HINT: &str = " (the registry's certificate is not trusted: add its CA to the \
    system store, point SSL_CERT_FILE at it, or put it in /etc/docker/certs.d/<host:port>/ca.crt; \
    or set insecure = true in its registry_auth block to skip the check)";

fn is_certificate_error(err: &reqwest::Error) -> bool {
    let chain = error_chain(err).to_ascii_lowercase();
    chain.contains("certificate") || chain.contains("unknownissuer")
}

/// The challenge of a 401 answer.
pub(super) fn challenge_of(answer: &reqwest::Response) -> Option<Challenge> {
    answer
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(Challenge::parse)
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

pub(super) fn bearer_value(value: &HeaderValue) -> Option<String> {
    value
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

/// A sensitive header value: hyper keeps it out of its own debug output.
pub(super) fn header(text: &str, registry: &str) -> Result<HeaderValue, RegistryError> {
    let mut value = HeaderValue::from_str(text).map_err(|_| RegistryError::Unauthorized {
        registry: registry.into(),
        detail: "the credential contains characters not allowed in an HTTP header".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "host_tls_tests.rs"]
mod tls_tests;
