//! A daemon that answers with more than anyone should keep: an error body of
//! many MiB, a progress line that never ends. What is kept stays bounded.

use super::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A daemon on a unix socket that answers one request with `status` and a
/// body of `len` bytes of `x`, sent as fast as it is read.
fn daemon_answering(status: &'static str, len: usize) -> (tempfile::TempDir, RawTarget) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let answer = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\n\r\n");
        if conn.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        let piece = vec![b'x'; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(piece.len());
            if conn.write_all(&piece[..n]).await.is_err() {
                return;
            }
            left -= n;
        }
    });
    (dir, RawTarget::Unix(path))
}

#[tokio::test]
async fn an_error_body_is_read_up_to_its_limit() {
    let (_dir, target) = daemon_answering("500 Internal Server Error", 32 << 20);
    let response = target.post("/build", &[]).await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(30), error_message(response))
        .await
        .expect("the body was read to its end");
    assert!(message.starts_with("HTTP 500: xxx"), "{}", &message[..40]);
    assert!(
        message.len() <= ERROR_BODY_LIMIT + 16,
        "{} bytes kept",
        message.len()
    );
}

#[tokio::test]
async fn a_line_without_an_end_is_refused_past_its_limit() {
    let (_dir, target) = daemon_answering("200 OK", MAX_LINE + (1 << 20));
    let response = target.post("/build", &[]).await.unwrap();
    let mut lines = Lines::new(response.into_body());
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next())
        .await
        .expect("the line was read");
    match first {
        Some(Err(why)) => assert!(why.contains("over 16 MiB"), "{why}"),
        Some(Ok(line)) => panic!("a line of {} bytes was kept", line.len()),
        None => panic!("no line"),
    }
    assert!(lines.next().await.is_none(), "the body ends there");
}
