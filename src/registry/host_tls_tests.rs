//! `insecure = true` over real TLS: the registry's own certificate goes
//! unchecked, a token service or a redirect target on another host keeps
//! its check unless that host is marked `insecure` too.

use super::*;
use crate::registry::auth::{AuthSettings, RegistryAuth};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTPS server on 127.0.0.1 with a self-signed certificate (for
/// `127.0.0.1` and `localhost`) that no one trusts; `answer` turns a request
/// path into a whole HTTP response.
async fn untrusted_server(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> u16 {
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let _ = tls.write_all(answer(&path).as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A registry on 127.0.0.1 redirecting `/redirect` to `localhost:<other>`,
/// and the other host serving a token and a blob; both certificates untrusted.
async fn registry_and_other_host() -> (String, u16) {
    let other = untrusted_server(|path| match path {
        p if p.starts_with("/token") => ok(r#"{"token":"from-the-realm"}"#),
        _ => ok("blob"),
    })
    .await;
    let registry = untrusted_server(move |path| match path {
        "/redirect" => format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: https://localhost:{other}/blob\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        ),
        _ => ok("{}"),
    })
    .await;
    (format!("127.0.0.1:{registry}"), other)
}

/// The registry's host as `RegistryClient::host_for` makes it, with `insecure` entries.
fn host(registry: &str, insecure: &[&str]) -> RegistryHost {
    let settings = AuthSettings {
        entries: insecure
            .iter()
            .map(|address| RegistryAuth {
                address: address.to_string(),
                insecure: true,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let transport = settings.transport_for(registry);
    RegistryHost::new(
        registry,
        registry,
        transport.plain_http,
        &settings.insecure_names(),
    )
    .unwrap()
}

async fn get(host: &RegistryHost, path: &str) -> Result<String, RegistryError> {
    let answer = host
        .send(|base| host.http.get(base.join(path).unwrap()).send())
        .await?;
    Ok(answer.text().await.unwrap_or_default())
}

async fn token(host: &RegistryHost, realm: String) -> Result<Option<HeaderValue>, RegistryError> {
    host.set_challenge(Challenge::Bearer {
        realm,
        service: None,
    });
    let scopes = ["repository:web:pull".to_string()];
    host.authorization(&scopes, &Credential::Anonymous).await
}

fn refused_certificate(result: Result<impl std::fmt::Debug, RegistryError>) {
    match result {
        Err(RegistryError::Unreachable { detail, .. }) => {
            assert!(
                detail.to_ascii_lowercase().contains("certificate"),
                "{detail}"
            )
        }
        other => panic!("expected a refused certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn an_insecure_registry_does_not_make_its_realm_or_redirects_insecure() {
    let (registry, other) = registry_and_other_host().await;
    let host = host(&registry, &[&registry]);
    // The registry itself: its untrusted certificate is not checked.
    assert_eq!(get(&host, "v2/").await.unwrap(), "{}");
    // A token service on another host is checked, and refused.
    refused_certificate(token(&host, format!("https://localhost:{other}/token")).await);
    // So is a redirect to another host (blob storage).
    refused_certificate(get(&host, "redirect").await);
}

#[tokio::test]
async fn a_realm_or_redirect_target_marked_insecure_itself_is_not_checked() {
    let (registry, other) = registry_and_other_host().await;
    let other_address = format!("localhost:{other}");
    let host = host(&registry, &[&registry, &other_address]);
    let sent = token(&host, format!("https://localhost:{other}/token")).await;
    let sent = sent.unwrap().unwrap();
    assert_eq!(sent.to_str().unwrap(), "Bearer from-the-realm");
    assert_eq!(get(&host, "redirect").await.unwrap(), "blob");
}
