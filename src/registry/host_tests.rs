use super::*;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain-HTTP server on loopback that answers every request with 200
/// and counts the connections that opened with a TLS handshake record.
async fn plain_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let tls_hellos = Arc::new(AtomicUsize::new(0));
    let counted = tls_hellos.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    if buf[0] == 0x16 {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let _ = conn.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
                        return;
                    }
                    let reply = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if conn.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (host, tls_hellos)
}

#[tokio::test]
async fn requests_made_at_once_wait_for_one_scheme_probe() {
    let (host, tls_hellos) = plain_server().await;
    let registry = RegistryHost::new(&host, &host, true, &[]).unwrap();
    let http = registry.http.clone();
    let sends = (0..10).map(|_| {
        registry.send(|base: Url| {
            let http = http.clone();
            async move { http.head(base.join("v2/").unwrap()).send().await }
        })
    });
    for answer in futures::future::join_all(sends).await {
        assert_eq!(answer.unwrap().status().as_u16(), 200);
    }
    assert_eq!(
        tls_hellos.load(Ordering::SeqCst),
        1,
        "one HTTPS attempt for ten requests"
    );
    assert_eq!(registry.base().unwrap().scheme(), "http");
}
