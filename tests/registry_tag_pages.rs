//! Destroy's protection against deleting what other tags name rests on the
//! repository's complete tag list. A registry whose tag list breaks off on a
//! later page (404 there, as distribution answers when the repository is
//! deleted or renamed between pages) must stop the delete, not be read as an
//! empty repository: a fake registry checks the requests it gets and answers
//! the first page with a `Link` to the next, the next with 404.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use stevedore::oci::{Digest, Reference};
use stevedore::registry::{AuthSettings, RegistryClient};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type Log = Arc<Mutex<Vec<String>>>;

async fn answer(req: Request<Incoming>, log: Log) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    log.lock()
        .unwrap()
        .push(format!("{} {target}", req.method()));
    let reply = |status: u16, body: &str, link: Option<&str>| {
        let mut r = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("docker-distribution-api-version", "registry/2.0");
        if let Some(link) = link {
            r = r.header("link", link);
        }
        r.body(Full::new(Bytes::from(body.to_string()))).unwrap()
    };
    let unknown =
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#;
    Ok(match (req.method().as_str(), target.as_str()) {
        ("GET", "/v2/") => reply(200, "{}", None),
        ("GET", t) if t.starts_with("/v2/web/tags/list") && !t.contains("last=") => reply(
            200,
            r#"{"name":"web","tags":["ours","release"]}"#,
            Some(r#"</v2/web/tags/list?n=1000&last=release>; rel="next""#),
        ),
        ("GET", t) if t.starts_with("/v2/web/tags/list") => reply(404, unknown, None),
        // Any manifest read or delete is recorded; none may happen here.
        _ => reply(404, unknown, None),
    })
}

#[tokio::test]
async fn a_tag_list_that_breaks_off_on_a_later_page_deletes_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let served = log.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, log.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let client = RegistryClient::new(AuthSettings::default());
    let repo = Reference::parse(&format!("{host}/web")).unwrap();
    let ours = Digest::sha256_of(b"our manifest");
    let result = stevedore::publish::delete_pushed(
        &client,
        &repo,
        std::slice::from_ref(&ours),
        &["ours".to_string()],
        CancellationToken::new(),
    )
    .await;
    server.abort();
    let requests = log.lock().unwrap().clone();
    let error = result.expect_err("an incomplete tag list must stop the delete");
    assert!(
        error.to_string().contains("the list is incomplete"),
        "{error}"
    );
    assert!(
        requests.iter().any(|r| r.contains("last=release")),
        "the second page was asked for: {requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.starts_with("DELETE")),
        "nothing may be deleted: {requests:?}"
    );
}
