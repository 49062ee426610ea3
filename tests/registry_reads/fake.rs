//! A counting fake registry: serves a few manifests and one config blob,
//! optionally behind the bearer-token challenge, and records every request
//! ("METHOD /path") so tests assert exactly what a read costs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use acceptance_tests::media_types::OCI_CONFIG;
pub use acceptance_tests::media_types::OCI_MANIFEST;
pub use acceptance_tests::sha256_digest as sha256;

const TOKEN: &str = "fake-token";

pub struct FakeRegistry {
    pub host: String,
    log: Arc<Mutex<Vec<String>>>,
    faults: Faults,
    pub manifest_digest: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers to give instead of the real ones, in order: (status, Retry-After).
type Faults = Arc<Mutex<std::collections::VecDeque<(u16, Option<&'static str>)>>>;

struct Content {
    /// tag or digest → manifest bytes
    manifests: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Vec<u8>>,
    bearer: bool,
    host: String,
}

impl FakeRegistry {
    /// Repository `web` with tags `v1` and `v2` on one linux/arm64 image.
    pub async fn start(bearer: bool) -> FakeRegistry {
        let config =
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        let config_digest = sha256(&config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [],
        }))
        .unwrap();
        let manifest_digest = sha256(&manifest);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let mut manifests = HashMap::new();
        for key in ["v1", "v2", manifest_digest.as_str()] {
            manifests.insert(key.to_string(), manifest.clone());
        }
        let content = Arc::new(Content {
            manifests,
            blobs: HashMap::from([(config_digest, config)]),
            bearer,
            host: host.clone(),
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let faults = Faults::default();
        let task = tokio::spawn(serve(listener, content, log.clone(), faults.clone()));
        FakeRegistry {
            host,
            log,
            faults,
            manifest_digest,
            task,
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }

    /// The next request (after any already queued) gets `status`, with a
    /// `Retry-After` header when given, instead of its real answer.
    pub fn fail_next(&self, status: u16, retry_after: Option<&'static str>) {
        self.faults.lock().unwrap().push_back((status, retry_after));
    }
}

async fn serve(
    listener: TcpListener,
    content: Arc<Content>,
    log: Arc<Mutex<Vec<String>>>,
    faults: Faults,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (content, log, faults) = (content.clone(), log.clone(), faults.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let fault = faults.lock().unwrap().pop_front();
                let answer = match fault {
                    Some((status, retry_after)) => {
                        let path = req.uri().path().to_string();
                        log.lock()
                            .unwrap()
                            .push(format!("{} {path} -> {status}", req.method()));
                        let mut b = Response::builder().status(status);
                        if let Some(after) = retry_after {
                            b = b.header("retry-after", after);
                        }
                        b.body(Full::new(Bytes::new())).unwrap()
                    }
                    None => answer(&content, &log, &req),
                };
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(
    content: &Content,
    log: &Mutex<Vec<String>>,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    log.lock().unwrap().push(format!("{} {path}", req.method()));
    let reply = |status: u16, headers: Vec<(&str, String)>, body: Vec<u8>| {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let body = if req.method() == hyper::Method::HEAD {
            Vec::new()
        } else {
            body
        };
        builder.body(Full::new(Bytes::from(body))).unwrap()
    };
    if path == "/token" {
        return reply(
            200,
            vec![],
            json!({"token": TOKEN, "expires_in": 300})
                .to_string()
                .into_bytes(),
        );
    }
    let authorized = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
    if content.bearer && !authorized {
        let challenge = format!(
            r#"Bearer realm="http://{}/token",service="fake",scope="repository:web:pull""#,
            content.host
        );
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
        return reply(401, vec![("www-authenticate", challenge)], body.to_vec());
    }
    let unknown = |code: &str| {
        let body = json!({"errors": [{"code": code, "message": "unknown"}]}).to_string();
        reply(
            404,
            vec![("content-type", "application/json".into())],
            body.into_bytes(),
        )
    };
    if let Some(reference) = path.strip_prefix("/v2/web/manifests/") {
        return match content.manifests.get(reference) {
            Some(bytes) => reply(
                200,
                vec![
                    ("content-type", OCI_MANIFEST.into()),
                    ("docker-content-digest", sha256(bytes)),
                ],
                bytes.clone(),
            ),
            None => unknown("MANIFEST_UNKNOWN"),
        };
    }
    if let Some(digest) = path.strip_prefix("/v2/web/blobs/") {
        return match content.blobs.get(digest) {
            Some(bytes) => reply(200, vec![], bytes.clone()),
            None => unknown("BLOB_UNKNOWN"),
        };
    }
    if path == "/v2/" {
        return reply(200, vec![], b"{}".to_vec());
    }
    unknown("NAME_UNKNOWN")
}
