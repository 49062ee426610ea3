//! Which TLS certificates a registry's HTTP client trusts, and which it does
//! not check at all.
//!
//! Trusted: the platform's store (which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`) plus, per registry host, the `*.crt` files of Docker's
//! `certs.d/<host[:port]>/` directories (`/etc/docker/certs.d` and the
//! rootless daemon's `$XDG_CONFIG_HOME/docker/certs.d`).
//!
//! Unchecked: only the hosts of `registry_auth` entries marked `insecure`.
//! A registry's client also reaches other hosts: its token service (the
//! challenge's realm) and wherever a redirect or an upload location points
//! (blob storage). Those keep their certificate checks unless they are
//! themselves marked `insecure`. TLS tells the verifier the host name, not
//! the port, so an `insecure` entry covers every port of its host name.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::normalize_address;

/// The host name of a registry address (`host[:port]`, IPv6 in brackets) as
/// TLS names the server: lower case, no port, Docker Hub's aliases folded.
pub fn host_name(address: &str) -> String {
    let host_port = normalize_address(address);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => match host_port.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => &host_port,
        },
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => normalize_address(host.trim_end_matches('.')),
    }
}

/// Whether a TLS connection to `server` skips the certificate check: only
/// when `insecure` (from [`host_name`]) names its host.
pub fn unchecked(insecure: &[String], server: &ServerName<'_>) -> bool {
    let name = host_name(&server.to_str());
    insecure.contains(&name)
}

/// A rustls client configuration checking every certificate against the
/// platform's store and `roots`, except those of the `insecure` hosts.
pub fn client_config(
    roots: Vec<CertificateDer<'static>>,
    insecure: &[String],
) -> Result<rustls::ClientConfig, String> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(crate::crypto::provider()));
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store
            .add(root)
            .map_err(|e| format!("a certs.d CA certificate is unusable: {e}"))?;
    }
    // As reqwest's own verifier: system certificates that do not parse are skipped.
    store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let verifier = ScopedVerifier::new(store, insecure, provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks certificates as WebPKI does, except on the `insecure` hosts.
/// Handshake signatures are always checked: the server holds the key of the
/// certificate it shows, whatever that certificate is.
#[derive(Debug)]
struct ScopedVerifier {
    checked: Option<Arc<WebPkiServerVerifier>>,
    insecure: Vec<String>,
    provider: Arc<CryptoProvider>,
}

impl ScopedVerifier {
    /// Checks against `store`; with no CA at all, the insecure hosts are
    /// still reached and every other host is refused.
    fn new(
        store: rustls::RootCertStore,
        insecure: &[String],
        provider: Arc<CryptoProvider>,
    ) -> Result<ScopedVerifier, String> {
        let checked = match store.is_empty() {
            true => None,
            false => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| format!("cannot set up certificate checks: {e}"))?,
            ),
        };
        Ok(ScopedVerifier {
            checked,
            insecure: insecure.to_vec(),
            provider,
        })
    }
}

impl ServerCertVerifier for ScopedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if unchecked(&self.insecure, server_name) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.checked {
            Some(checked) => checked.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The CA certificates Docker's convention trusts for `host`: every `*.crt`
/// in `certs.d/<host>/` of the system and the rootless daemon. Client
/// certificates (`*.cert`/`*.key`) are not used.
pub fn certs_d_roots(host: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut roots = Vec::new();
    for dir in certs_d_dirs() {
        let dir = dir.join(host);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        for file in files {
            let pem = std::fs::read(&file)
                .map_err(|e| format!("cannot read CA file {}: {e}", file.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("CA file {} is not PEM: {e}", file.display()))?;
            if certs.is_empty() {
                return Err(format!("CA file {} holds no certificate", file.display()));
            }
            roots.extend(certs);
        }
    }
    Ok(roots)
}

fn certs_d_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/docker/certs.d")];
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(home) = config_home {
        dirs.push(home.join("docker/certs.d"));
    }
    dirs
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
