//! The two registry writes an image needs (OCI distribution spec): monolithic blob upload
//! (`POST /v2/<name>/blobs/uploads/`, then `PUT <location>?digest=`) and manifest `PUT`.

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::Method;

use crate::registry::Registry;

/// Writes blobs and manifests into one registry, with its credentials when it has some.
pub struct Uploader<'r> {
    registry: &'r Registry,
    client: Client,
}

impl<'r> Uploader<'r> {
    pub fn new(registry: &'r Registry) -> Uploader<'r> {
        Uploader {
            registry,
            client: registry.http(),
        }
    }

    /// Uploads `bytes` to repository `name` and returns its `sha256:` digest.
    pub fn blob(&self, name: &str, bytes: &[u8]) -> String {
        let digest = crate::sha256_digest(bytes);
        let path = format!("/v2/{name}/blobs/uploads/");
        let start = format!("{}{path}", self.registry.url());
        let resp = expect_status(
            self.registry.request(Method::POST, &path).send(),
            202,
            &start,
        );
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .expect("upload start without Location")
            .to_string();
        // Distribution answers with an absolute URL; the spec also allows a path.
        let mut url = if location.starts_with('/') {
            format!("{}{location}", self.registry.url())
        } else {
            location
        };
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let put = self
            .client
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec());
        expect_status(self.registry.authorize(put, &path).send(), 201, &url);
        digest
    }

    /// Puts manifest `bytes` under `reference` (a tag or digest); returns its digest.
    pub fn manifest(&self, name: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        let path = format!("/v2/{name}/manifests/{reference}");
        let url = format!("{}{path}", self.registry.url());
        let put = self
            .registry
            .request(Method::PUT, &path)
            .header(CONTENT_TYPE, media_type)
            .body(bytes.to_vec());
        expect_status(put.send(), 201, &url);
        crate::sha256_digest(bytes)
    }
}

fn expect_status(sent: reqwest::Result<Response>, want: u16, url: &str) -> Response {
    let resp = sent.unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
    let status = resp.status().as_u16();
    if status != want {
        let body = resp.text().unwrap_or_default();
        panic!("{url}: expected HTTP {want}, got {status}: {body}");
    }
    resp
}
