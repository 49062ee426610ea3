//! The server's TLS against a client shaped like Terraform's (ECDSA
//! P-521/SHA-512 client certificate, aws-lc verifying), in memory: the ring
//! key, key shares and signatures must interoperate for TLS 1.3 and 1.2.

use super::*;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Trusts exactly the certificate the handshake line published, and checks
/// the server's handshake signature with aws-lc (so ring's signature is proved).
#[derive(Debug)]
struct PinnedServer {
    cert: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the published certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn terraform_like_client() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let cert = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.pem(), cert.der().clone(), der)
}

async fn round_trip(version: &'static rustls::SupportedProtocolVersion) {
    let (pem, client_cert, client_key) = terraform_like_client();
    let server = setup(&pem).unwrap();
    let published = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&server.cert_field)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            cert: published,
            provider,
        }))
        .with_client_auth_cert(vec![client_cert], client_key)
        .unwrap();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let (near, far) = tokio::io::duplex(64 * 1024);
    let accept = tokio::spawn(async move {
        let mut tls = server.acceptor.accept(far).await.unwrap();
        let mut got = [0u8; 4];
        tls.read_exact(&mut got).await.unwrap();
        tls.write_all(&got).await.unwrap();
        tls.flush().await.unwrap();
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, near).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tls.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");
    accept.await.unwrap();
}

#[tokio::test]
async fn terraform_like_client_completes_tls13() {
    round_trip(&rustls::version::TLS13).await;
}

#[tokio::test]
async fn terraform_like_client_completes_tls12() {
    round_trip(&rustls::version::TLS12).await;
}

#[tokio::test]
async fn another_client_certificate_is_refused() {
    let (pem, _, _) = terraform_like_client();
    let (_, other_cert, other_key) = terraform_like_client();
    let server = setup(&pem).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer {
            cert: base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(&server.cert_field)
                .unwrap(),
            provider,
        }))
        .with_client_auth_cert(vec![other_cert], other_key)
        .unwrap();
    let (near, far) = tokio::io::duplex(64 * 1024);
    let accept = tokio::spawn(async move { server.acceptor.accept(far).await.is_err() });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("localhost").unwrap();
    // TLS 1.3 clients learn of the refusal on their first read.
    if let Ok(mut tls) = connector.connect(name, near).await {
        let _ = tls.write_all(b"x").await;
        let mut buf = [0u8; 1];
        assert!(tls.read(&mut buf).await.map(|n| n == 0).unwrap_or(true));
    }
    assert!(
        accept.await.unwrap(),
        "the server accepted a foreign client certificate"
    );
}
