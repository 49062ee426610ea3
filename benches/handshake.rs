//! Provider start-up as Terraform waits for it (several times per command):
//! process start to the handshake line, and process start to the first
//! `GetProviderSchema` answer over AutoMTLS with a P-521 client certificate,
//! as Terraform connects. Key generation and the TLS handshake are part of
//! the cost. Target: the second ≤ 10 ms median.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use stevedore::protocol::proto as pb;
use tonic::transport::Endpoint;

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

struct Identity {
    pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn client_identity() -> Identity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
    let cert = params.self_signed(&key).expect("cert");
    Identity {
        pem: cert.pem(),
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// Starts the provider; returns it and its handshake line's fields.
fn spawn(bin: &str, pem: Option<&str>) -> (Child, Vec<String>) {
    let mut cmd = Command::new(bin);
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match pem {
        Some(p) => cmd.env("PLUGIN_CLIENT_CERT", p),
        None => cmd.env_remove("PLUGIN_CLIENT_CERT"),
    };
    let mut child = cmd.spawn().expect("spawn provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("handshake");
    assert!(line.starts_with("1|6|unix|"), "bad handshake {line:?}");
    (
        child,
        line.trim_end().split('|').map(str::to_string).collect(),
    )
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn to_handshake(bin: &str, pem: Option<&str>) -> Duration {
    let t0 = Instant::now();
    let (child, _) = spawn(bin, pem);
    let took = t0.elapsed();
    stop(child);
    took
}

/// Process start to the first GetProviderSchema answer over mTLS.
fn to_schema(rt: &tokio::runtime::Runtime, bin: &str, id: &Identity) -> Duration {
    let t0 = Instant::now();
    let (child, fields) = spawn(bin, Some(&id.pem));
    let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&fields[5])
        .expect("certificate field");
    let socket = fields[3].clone();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(server_cert, provider)))
        .with_client_auth_cert(vec![id.cert.clone()], id.key.clone_key())
        .expect("client cert");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
    rt.block_on(async move {
        let channel = Endpoint::try_from("http://localhost")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_| {
                let (socket, tls) = (socket.clone(), tls.clone());
                async move {
                    let stream = tokio::net::UnixStream::connect(&socket).await?;
                    let name = ServerName::try_from("localhost").expect("name");
                    Ok::<_, std::io::Error>(TokioIo::new(tls.connect(name, stream).await?))
                }
            }))
            .await
            .expect("mTLS connection");
        pb::provider_client::ProviderClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .expect("GetProviderSchema");
    });
    let took = t0.elapsed();
    stop(child);
    took
}

#[derive(Debug)]
struct Pinned(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if ee.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    println!(
        "{name:<34} n={:<3} median {:>6.2} ms  mean {:>6.2} ms  p95 {:>6.2} ms  max {:>6.2} ms",
        v.len(),
        ms(v[v.len() / 2]),
        mean,
        ms(v[v.len() * 95 / 100]),
        ms(v[v.len() - 1])
    );
}

fn main() {
    let bin = std::env::var("STEVEDORE_PROVIDER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_terraform-provider-stevedore").to_string());
    let id = client_identity();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = 40;
    to_schema(&rt, &bin, &id); // warm the page cache
    report(
        "start to GetProviderSchema (mTLS)",
        (0..n).map(|_| to_schema(&rt, &bin, &id)).collect(),
    );
    report(
        "start to handshake line (mTLS)",
        (0..n).map(|_| to_handshake(&bin, Some(&id.pem))).collect(),
    );
    report(
        "start to handshake line (plain)",
        (0..n).map(|_| to_handshake(&bin, None)).collect(),
    );
}
