//! A fake registry that lies about digests or fails, proving the client
//! rejects content it did not verify and classifies server failures.

use std::sync::Arc;

use serde_json::json;
use stevedore::oci::Reference;
use stevedore::registry::{
    inspect, AuthSettings, InspectError, RegistryClient, RegistryError, RetryPolicy,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use acceptance_tests::media_types::{OCI_CONFIG, OCI_MANIFEST};
use acceptance_tests::sha256_digest as sha256;
use stevedore::oci::Digest;

/// One canned answer: status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn ok(content_type: &str, body: Vec<u8>) -> Answer {
    Answer {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body,
    }
}

type Routes = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// Serves `routes` (request path → answer) on a loopback port, one request
/// per connection. Returns the host:port.
async fn serve(routes: Routes) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    // A TLS hello on this plain port is a malformed request to
                    // Go's HTTP server (and so docker-registry): 400, hang up.
                    if head.first() == Some(&0x16) {
                        let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n400 Bad Request").await;
                        return;
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let answer = if path == "/v2/" {
                    ok("application/json", b"{}".to_vec())
                } else {
                    routes(&path)
                };
                let mut out = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    answer.status,
                    answer.body.len()
                );
                for (name, value) in &answer.headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                let _ = socket.write_all(out.as_bytes()).await;
                let _ = socket.write_all(&answer.body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    host
}

/// A manifest whose config digest names `config_claimed`.
fn manifest_with_config(config_claimed: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config_claimed, "size": 40 },
        "layers": [],
    }))
    .unwrap()
}

fn client() -> RegistryClient {
    RegistryClient::new(AuthSettings::default())
}

#[tokio::test]
async fn manifest_not_matching_the_requested_digest_is_rejected() {
    let served = manifest_with_config(&sha256(b"config"));
    let body = served.clone();
    let host = serve(Arc::new(move |_: &str| ok(OCI_MANIFEST, body.clone()))).await;
    let asked = sha256(b"something else entirely");
    let image = Reference::parse(&format!("{host}/web@{asked}")).unwrap();
    let err = client().get_manifest(&image).await.unwrap_err();
    match err {
        RegistryError::DigestMismatch { expected, actual } => {
            assert_eq!(expected, asked);
            assert_eq!(actual, sha256(&served));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn tag_with_a_lying_digest_header_is_rejected() {
    let body = manifest_with_config(&sha256(b"config"));
    let lie = sha256(b"not the manifest");
    let host = serve(Arc::new(move |_: &str| {
        let mut answer = ok(OCI_MANIFEST, body.clone());
        answer
            .headers
            .push(("Docker-Content-Digest".into(), lie.clone()));
        answer
    }))
    .await;
    let image = Reference::parse(&format!("{host}/web:v1")).unwrap();
    let err = client().get_manifest(&image).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn config_blob_with_other_bytes_is_rejected() {
    let real_config = br#"{"os":"linux","architecture":"amd64"}"#.to_vec();
    let manifest = manifest_with_config(&sha256(&real_config));
    let host = serve(Arc::new(move |path: &str| {
        if path.contains("/manifests/") {
            ok(OCI_MANIFEST, manifest.clone())
        } else {
            // Same length, different platform: the blob lies about its content.
            ok(
                "application/octet-stream",
                br#"{"os":"linux","architecture":"arm64"}"#.to_vec(),
            )
        }
    }))
    .await;
    let image = Reference::parse(&format!("{host}/web:v1")).unwrap();
    let err = inspect(&client(), &image, None).await.unwrap_err();
    assert!(
        matches!(
            err,
            InspectError::Registry(RegistryError::DigestMismatch { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_errors_are_transient_and_say_the_status() {
    let host = serve(Arc::new(|_: &str| Answer {
        status: 503,
        headers: vec![],
        body: b"upstream overloaded".to_vec(),
    }))
    .await;
    let image = Reference::parse(&format!("{host}/web:v1")).unwrap();
    let err = client().get_manifest(&image).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Server { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(
        err.to_string().contains("HTTP 503: upstream overloaded"),
        "{err}"
    );
}

#[tokio::test]
async fn non_json_manifests_are_invalid() {
    let host = serve(Arc::new(|_: &str| {
        ok(OCI_MANIFEST, b"<html>login</html>".to_vec())
    }))
    .await;
    let image = Reference::parse(&format!("{host}/web:v1")).unwrap();
    let err = client().get_manifest(&image).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::InvalidManifest { .. }),
        "{err:?}"
    );
}

/// A rate limiter that refuses everything for a second, saying so in
/// `Retry-After`: a push retry that waits as told gets through on its second
/// attempt, where one following its own 10 ms backoff is refused again.
#[tokio::test]
async fn push_retries_wait_as_retry_after_says() {
    // The window opens with the first request, not before the server is up.
    let opened = std::sync::OnceLock::new();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = refused.clone();
    let host = serve(Arc::new(move |_: &str| {
        let opened = opened.get_or_init(std::time::Instant::now);
        if opened.elapsed() < std::time::Duration::from_secs(1) {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Answer {
                status: 429,
                headers: vec![("Retry-After".into(), "1".into())],
                body: br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec(),
            };
        }
        Answer {
            status: 404,
            headers: vec![],
            body: Vec::new(),
        }
    }))
    .await;
    let repo = Reference::parse(&format!("{host}/web")).unwrap();
    let client = client();
    let pusher = client
        .pusher(tokio_util::sync::CancellationToken::new())
        .with_retry(RetryPolicy {
            attempts: 2,
            first_backoff: std::time::Duration::from_millis(10),
            max_backoff: std::time::Duration::from_secs(5),
        });
    let exists = pusher
        .blob_exists(&repo, &Digest::sha256_of(b"layer"))
        .await;
    assert!(matches!(exists, Ok(false)), "{exists:?}");
    assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Distribution stores no manifest over 4 MiB; an answer bigger than that is
/// refused as invalid (not retried as a network blip), without reading it whole.
#[tokio::test]
async fn a_manifest_over_4_mib_is_refused_as_invalid() {
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = asked.clone();
    let host = serve(Arc::new(move |_: &str| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        ok(OCI_MANIFEST, vec![b' '; 4 * 1024 * 1024 + 1])
    }))
    .await;
    let image = Reference::parse(&format!("{host}/web:v1")).unwrap();
    let err = client().get_manifest(&image).await.unwrap_err();
    assert!(
        matches!(&err, RegistryError::InvalidManifest { detail } if detail.contains("larger than the 4194304 bytes")),
        "{err:?}"
    );
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "asked once"
    );
}
