//! Helpers for the push tests: generated images on disk, and a proxy in
//! front of the real registry that counts requests and can play dead.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use stevedore::oci::Digest;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, BodyStream, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::Digest as _;
use stevedore::oci::Reference;
use stevedore::registry::assemble::{image_manifest, Assembled, Format};
use stevedore::registry::Pusher;

/// A blob on disk.
pub struct Layer {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

/// Writes `size` pseudo-random bytes seeded by `seed` to `path`, 1 MiB at a
/// time, hashing as it goes (never the whole file in memory).
pub fn write_layer(path: &Path, seed: u64, size: u64) -> Layer {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = sha2::Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = size;
    let mut buffer = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(buffer.len() as u64) as usize;
        for word in buffer[..n].chunks_mut(8) {
            // xorshift64: fast enough in debug builds, and incompressible.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
    Layer {
        path: path.to_path_buf(),
        digest: Digest::from_sha256(hasher.finalize()),
        size,
    }
}

/// An image config saying `platform` (`os/arch[/variant]`).
pub fn config_json(platform: &str, seed: u64) -> Vec<u8> {
    let parts: Vec<&str> = platform.split('/').collect();
    let mut config = serde_json::json!({
        "architecture": parts[1], "os": parts[0],
        "config": { "Labels": { "seed": seed.to_string() } },
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    if let Some(variant) = parts.get(2) {
        config["variant"] = serde_json::json!(variant);
    }
    serde_json::to_vec(&config).unwrap()
}

/// A generated image pushed with `pusher`: its layers (written under `dir`),
/// config and manifest blobs, but not the manifest itself.
pub struct Image {
    pub layers: Vec<Layer>,
    pub config_digest: Digest,
    pub manifest: Assembled,
}

/// Generates an image whose config says `config_platform` with two layers
/// and pushes its blobs to `repo`.
pub async fn push_image_blobs(
    pusher: &Pusher<'_>,
    repo: &Reference,
    dir: &Path,
    format: Format,
    config_platform: &str,
    seed: u64,
) -> Image {
    let layers: Vec<Layer> = (0..2)
        .map(|i| {
            let path = dir.join(format!("layer-{seed}-{i}"));
            write_layer(&path, seed * 10 + i, 50_000 + i * 1000)
        })
        .collect();
    for layer in &layers {
        pusher
            .push_blob_file(repo, &layer.path, &layer.digest, layer.size)
            .await
            .unwrap();
    }
    let config = config_json(config_platform, seed);
    let config_digest = pusher.push_blob_bytes(repo, &config).await.unwrap();
    let refs: Vec<(Digest, u64)> = layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
    let manifest = image_manifest(format, (&config_digest, config.len() as u64), &refs);
    Image {
        layers,
        config_digest,
        manifest,
    }
}

/// Peak resident set size of this process, in bytes (Linux `VmHWM`).
pub fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

const PASS: u8 = 0;
const DOWN: u8 = 1;
const DROP_UPLOADS: u8 = 2;

/// An HTTP proxy on loopback in front of `upstream`, recording every
/// request's method and path (with query), able to drop connections.
#[derive(Clone)]
pub struct Proxy {
    pub host: String,
    log: Arc<Mutex<Vec<(String, String)>>>,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            host: listener.local_addr().unwrap().to_string(),
            log: Arc::default(),
            mode: Arc::default(),
        };
        let (upstream, state) = (upstream.to_string(), proxy.clone());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (upstream, state, http) = (upstream.clone(), state.clone(), http.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (upstream, state, http) =
                            (upstream.clone(), state.clone(), http.clone());
                        async move { state.forward(&http, &upstream, request).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        proxy
    }

    /// Every request from now on gets its connection dropped.
    pub fn go_down(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
    }

    /// Blob upload PUTs get dropped after part of their body is read.
    pub fn drop_uploads(&self) {
        self.mode.store(DROP_UPLOADS, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }

    /// Blob bodies sent: PUTs completing an upload plus any PATCHes.
    pub fn uploads(&self) -> usize {
        self.requests()
            .iter()
            .filter(|(m, p)| (m == "PUT" || m == "PATCH") && p.contains("/blobs/uploads/"))
            .count()
    }

    async fn forward(
        &self,
        http: &reqwest::Client,
        upstream: &str,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::io::Error> {
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let method = request.method().clone();
        self.log
            .lock()
            .unwrap()
            .push((method.to_string(), path.clone()));
        let mode = self.mode.load(Ordering::SeqCst);
        if mode == DOWN {
            return Err(std::io::Error::other("proxy is down"));
        }
        let (parts, body) = request.into_parts();
        if mode == DROP_UPLOADS && method == hyper::Method::PUT && path.contains("/blobs/uploads/")
        {
            let mut body = body;
            let _ = body.frame().await;
            return Err(std::io::Error::other("dropped mid-upload"));
        }
        let stream = BodyStream::new(body).filter_map(|frame| async move {
            match frame {
                Ok(frame) => frame.into_data().ok().map(Ok::<_, std::io::Error>),
                Err(e) => Some(Err(std::io::Error::other(e))),
            }
        });
        let mut outgoing = http.request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            format!("http://{upstream}{path}"),
        );
        for (name, value) in &parts.headers {
            if !["host", "transfer-encoding", "connection"].contains(&name.as_str()) {
                outgoing = outgoing.header(name.as_str(), value.as_bytes());
            }
        }
        let answer = outgoing
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(std::io::Error::other)?;
        let mut response = Response::builder().status(answer.status().as_u16());
        for (name, value) in answer.headers() {
            if name == "transfer-encoding" || name == "connection" {
                continue;
            }
            let mut value = value.as_bytes().to_vec();
            if name == "location" {
                // Keep the client talking to us, not straight to the registry.
                value = String::from_utf8_lossy(&value)
                    .replace(upstream, &self.host)
                    .into_bytes();
            }
            response = response.header(name.as_str(), value);
        }
        let body = answer.bytes().await.map_err(std::io::Error::other)?;
        response
            .body(Full::new(body))
            .map_err(std::io::Error::other)
    }
}
