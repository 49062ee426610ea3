//! AutoMTLS as go-plugin does it: Terraform puts its client certificate in
//! PLUGIN_CLIENT_CERT; we make a self-signed server certificate, require and
//! pin exactly that client certificate, offer ALPN `h2` (grpc-go ≥ 1.67
//! insists on it) and publish our certificate in the handshake line.
//!
//! Terraform's certificate is ECDSA P-521/SHA-512, which ring cannot verify,
//! hence aws-lc-rs for verification; everything that takes randomness runs
//! on ring instead (see `tls_crypto` for why).

use super::tls_crypto::ServerKey;
use crate::crypto::provider;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("PLUGIN_CLIENT_CERT holds no PEM certificate: {0}")]
    ClientCert(String),
    #[error("could not create the server certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("could not create the server key: {0}")]
    Key(String),
    #[error("could not set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

pub struct ServerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// The server certificate's DER, base64 without padding (the handshake's 6th field).
    pub cert_field: String,
}

pub fn setup(client_cert_pem: &str) -> Result<ServerTls, TlsError> {
    let client = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
        .map_err(|e| TlsError::ClientCert(e.to_string()))?;
    let (cert, key) = server_certificate()?;
    let cert_field = base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert.as_ref());
    let provider = Arc::new(provider());
    let verifier = Arc::new(PinnedClient {
        cert: client.into_owned(),
        provider: provider.clone(),
    });
    // NOTE: the key goes in as a resolver, not as DER through the provider's
    // key loader, so aws-lc never parses (and checks with randomness) it.
    let certified = CertifiedKey::new(vec![cert], Arc::new(key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(ServerTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert_field,
    })
}

/// A certificate shaped like go-plugin's: self-signed CA flag, SAN and CN
/// `localhost`, server+client auth, valid from 30 s ago for 30 years. P-256
/// rather than go-plugin's P-521: Go accepts either, and it is the cheaper
/// curve for every TLS handshake.
///
/// NOTE: key and signature come from ring and the OS generator: aws-lc's
/// first random byte costs ~25 ms of CPU-jitter seeding (`tls_crypto`).
fn server_certificate() -> Result<(CertificateDer<'static>, ServerKey), TlsError> {
    let key = ServerKey::generate().map_err(TlsError::Key)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "HashiCorp");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(30);
    params.not_after = now + Duration::from_secs(262_980 * 3600);
    let cert = params.self_signed(&key)?;
    Ok((cert.der().clone(), key))
}

/// Accepts exactly the certificate Terraform gave us, nothing else.
#[derive(Debug)]
struct PinnedClient {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PinnedClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
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

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
