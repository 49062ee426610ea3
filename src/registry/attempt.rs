//! One push request's view of the registry: its base URL, the
//! authorization to send and how its answers become [`RegistryError`]s.

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, Url};

use super::error::{error_chain, RegistryError};
use super::pipeline::answer_error;

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
    /// never to another host a `Location` header may point at, and never
    /// over a plain-HTTP `Location` of a registry we reached over HTTPS
    /// (a downgrade), unless the host is loopback.
    pub(super) fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let same_host = url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default();
        let downgraded = url.scheme() == "http"
            && self.base.scheme() == "https"
            && !url
                .host_str()
                .is_some_and(crate::oci::reference::is_loopback_host);
        let builder = self.http.request(method, url);
        match (&self.header, same_host && !downgraded) {
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

    /// A transport failure, with the URL it names redacted: upload
    /// locations carry session state (`_state=...`) and presigned redirects
    /// carry credentials (`X-Amz-Security-Token`) in their query.
    pub(super) fn unreachable(&self, err: reqwest::Error) -> RegistryError {
        let url = err.url().map(redacted);
        let err = err.without_url();
        let detail = match url {
            Some(url) => format!("{url}: {}", error_chain(&err)),
            None => error_chain(&err),
        };
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            detail,
        }
    }

    /// The error for an answer with an unexpected status.
    pub(super) async fn failure(&self, response: reqwest::Response, shown: &str) -> RegistryError {
        answer_error(response, &self.registry, shown, Some(&self.note)).await
    }
}

/// `url` without its query, fragment or user info, safe to show.
pub(super) fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(base: &str) -> PushAuth {
        PushAuth {
            http: reqwest::Client::new(),
            base: Url::parse(base).unwrap(),
            header: Some(HeaderValue::from_static("Bearer t0ken")),
            registry: "r".into(),
            note: String::new(),
        }
    }

    fn sends_auth(a: &PushAuth, url: &str) -> bool {
        let req = a
            .request(Method::PUT, Url::parse(url).unwrap())
            .build()
            .unwrap();
        req.headers().contains_key(AUTHORIZATION)
    }

    #[test]
    fn credentials_stay_on_the_registry_host_and_off_downgrades() {
        let tls = auth("https://reg.example/");
        assert!(sends_auth(&tls, "https://reg.example/v2/x/blobs/uploads/1"));
        assert!(!sends_auth(
            &tls,
            "https://s3.example/bucket?X-Amz-Security-Token=abc"
        ));
        assert!(
            !sends_auth(&tls, "http://reg.example:443/v2/x/blobs/uploads/1"),
            "downgraded"
        );
        let local = auth("http://127.0.0.1:5000/");
        assert!(sends_auth(
            &local,
            "http://127.0.0.1:5000/v2/x/blobs/uploads/1"
        ));
    }

    #[test]
    fn shown_urls_lose_query_and_user_info() {
        let url = Url::parse("https://u:p@s3.example/b/k?X-Amz-Security-Token=SECRET&_state=S#f")
            .unwrap();
        let shown = redacted(&url);
        assert_eq!(shown, "https://s3.example/b/k");
    }
}
