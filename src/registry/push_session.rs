//! One push request's view of the registry: its base URL, the
//! authorization to send and how its answers become [`RegistryError`]s.

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, Url};

use super::error::{error_chain, from_status, RegistryError};

/// One attempt's view of the registry: where it is and what to authorize with.
pub(super) struct PushAuth {
    pub(super) http: reqwest::Client,
    /// `scheme://host[:port]`
    pub(super) base: Url,
    pub(super) header: Option<HeaderValue>,
    pub(super) registry: String,
    /// Which credentials were sent, without secrets, for 401 messages.
    pub(super) note: String,
}

impl PushAuth {
    /// A request to `url`; credentials go only to the registry's own host,
    /// never to another host a `Location` header may point at.
    pub(super) fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let same_host = url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        let builder = self.http.request(method, url);
        match (&self.header, same_host) {
            (Some(value), true) => builder.header(AUTHORIZATION, value.clone()),
            _ => builder,
        }
    }

    pub(super) fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.resolve(path)
    }

    /// Resolves a `Location` header. Distribution answers with absolute
    /// URLs, but the spec allows a path only, and some registries (older
    /// Harbor, Artifactory behind proxies) send exactly that.
    pub(super) fn resolve(&self, location: &str) -> Result<Url, RegistryError> {
        self.base
            .join(location)
            .map_err(|e| RegistryError::Rejected {
                registry: self.registry.clone(),
                detail: format!("unusable upload location {location:?}: {e}"),
            })
    }

    pub(super) fn unreachable(&self, err: reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            detail: error_chain(&err),
        }
    }

    /// The error for an answer with an unexpected status.
    pub(super) async fn failure(&self, response: reqwest::Response, shown: &str) -> RegistryError {
        let status = response.status().as_u16();
        // Error bodies are small JSON envelopes or HTML pages; a broken
        // body is reported as empty rather than masking the status.
        let body = response.text().await.unwrap_or_default();
        match from_status(status, &body, &self.registry, shown) {
            RegistryError::Unauthorized { registry, detail } => RegistryError::Unauthorized {
                registry,
                detail: format!("{detail} ({})", self.note),
            },
            other => other,
        }
    }
}

/// The body of `response`, refused once it passes `limit` bytes, so a
/// registry cannot make us buffer an unbounded answer.
pub(super) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
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
