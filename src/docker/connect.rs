//! Reaching the daemon an [`Endpoint`] names: `unix://` and plain `tcp://`
//! directly through bollard; TLS and `ssh://` through a [`Tunnel`]. The
//! first request is a ping whose failure names the daemon, where its address
//! came from, and why (ssh's message, the refused certificate), not only
//! hyper's `client error (Connect)`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::SystemVersion;
use bollard::{Docker, API_DEFAULT_VERSION};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::endpoint::{redacted, Endpoint, TlsFiles};
use super::error::{ConnectCause, ConnectError};
use super::raw::RawTarget;
use super::tunnel::{Dial, SshTarget, TlsTarget, Tunnel};

pub use super::endpoint::DEFAULT_SOCKET;

/// Seconds to wait for the daemon's response headers. A classic build only
/// answers after it has read the whole context, so this is generous.
const REQUEST_TIMEOUT_SECS: u64 = 900;
/// The first ping: ssh may ask a slow DNS and log in first.
const PING_TIMEOUT: Duration = Duration::from_secs(45);
/// The docker CLI's default port for a `tcp://` daemon with TLS.
const TLS_PORT: u16 = 2376;
const PLAIN_PORT: u16 = 2375;

/// A client for one daemon, and the tunnel it goes through, if any.
#[derive(Clone)]
pub struct Daemon {
    pub docker: Docker,
    pub endpoint: Endpoint,
    /// Where connections of our own go (BuildKit sessions and builds).
    pub(crate) raw: RawTarget,
    tunnel: Option<Arc<Tunnel>>,
    /// The daemon's answer to `GET /version`, once asked: whether it has
    /// BuildKit does not change while we talk to it.
    version: Arc<tokio::sync::OnceCell<SystemVersion>>,
}

impl Daemon {
    /// Asks the daemon for its version: the first request, so a daemon that
    /// cannot be reached is reported here, with the reason.
    pub async fn check(&self) -> Result<String, ConnectError> {
        // One request: `GET /version` fails just as `/_ping` would, and over
        // ssh each request is a login of its own.
        match tokio::time::timeout(PING_TIMEOUT, self.docker.version()).await {
            Ok(Ok(version)) => {
                let shown = version.version.clone();
                let _ = self.version.set(version);
                Ok(shown.unwrap_or_else(|| "unknown".to_string()))
            }
            Ok(Err(e)) => Err(self.unreachable(ConnectCause::Refused(self.explain(&e)))),
            Err(_) => Err(self.unreachable(ConnectCause::NoAnswer {
                secs: PING_TIMEOUT.as_secs(),
            })),
        }
    }

    /// The daemon's version answer: the one [`Daemon::check`] got, or a new one.
    pub(crate) async fn version(&self) -> Result<&SystemVersion, bollard::errors::Error> {
        self.version.get_or_try_init(|| self.docker.version()).await
    }

    /// The error's causes, and why the tunnel's last connection failed.
    pub fn explain(&self, e: &bollard::errors::Error) -> String {
        let text = crate::diag::error_chain(e);
        match self.tunnel.as_ref().and_then(|t| t.last_error()) {
            Some(why) => why,
            None if self.endpoint.tls.is_none() && looks_like_tls_port(&text) => format!(
                "{text}; if the daemon expects TLS (usually port {TLS_PORT}), set \
                 docker_tls_verify = true and docker_cert_path (or DOCKER_TLS_VERIFY and \
                 DOCKER_CERT_PATH)"
            ),
            None => text,
        }
    }

    fn unreachable(&self, cause: ConnectCause) -> ConnectError {
        ConnectError {
            host: self.endpoint.to_string(),
            cause,
        }
    }
}

/// A plain client on a TLS port reads the server's alert or a closed
/// connection where an HTTP response should be.
fn looks_like_tls_port(text: &str) -> bool {
    [
        "connection closed",
        "invalid HTTP",
        "IncompleteMessage",
        "reset by peer",
        "parse",
    ]
    .iter()
    .any(|s| text.contains(s))
}

/// Makes (lazily: no request yet) a client for `endpoint`.
pub fn connect(endpoint: Endpoint) -> Result<Daemon, ConnectError> {
    let fail = |cause: ConnectCause| ConnectError {
        host: endpoint.to_string(),
        cause,
    };
    let bad = |reason: String| fail(ConnectCause::Address(reason));
    let setup = |reason: String| fail(ConnectCause::Setup(reason));
    let host = endpoint.host.as_str();
    let (docker, tunnel, raw) = if let Some(path) = host.strip_prefix("unix://") {
        let docker = Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION);
        (docker, None, RawTarget::Unix(path.into()))
    } else if host.starts_with("ssh://") {
        let target = SshTarget::parse(host).map_err(bad)?;
        tunnelled(Dial::Ssh(target)).map_err(setup)?
    } else if let Some(rest) = ["tcp://", "http://", "https://"]
        .iter()
        .find_map(|s| host.strip_prefix(s))
    {
        match &endpoint.tls {
            Some(files) => {
                let (name, port) = host_port(rest, TLS_PORT).map_err(bad)?;
                let target = TlsTarget {
                    config: Arc::new(tls_config(files).map_err(setup)?),
                    host: name,
                    port,
                    ca_file: files.ca.clone(),
                    client_cert: files.client.as_ref().map(|(cert, _)| cert.clone()),
                };
                tunnelled(Dial::Tls(target)).map_err(setup)?
            }
            None => {
                let (name, port) = host_port(rest, PLAIN_PORT).map_err(bad)?;
                let address = format!("{}:{port}", bracket(&name));
                let docker = Docker::connect_with_http(
                    &format!("tcp://{address}"),
                    REQUEST_TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                );
                (docker, None, RawTarget::Tcp(address))
            }
        }
    } else {
        return Err(bad(
            "unsupported scheme; use unix:///path/to/docker.sock, tcp://host:port or ssh://user@host"
                .to_string(),
        ));
    };
    let docker = docker.map_err(|e| setup(crate::diag::error_chain(&e)))?;
    Ok(Daemon {
        docker,
        endpoint,
        raw,
        tunnel: tunnel.map(Arc::new),
        version: Arc::default(),
    })
}

/// The daemon the docker CLI would use with nothing on its command line
/// (`DOCKER_HOST`, `DOCKER_CONTEXT`, the current context, the local socket).
pub fn connect_as_the_cli_would() -> Result<Daemon, ConnectError> {
    let endpoint = super::endpoint::resolve(&Default::default(), &|name| std::env::var(name).ok())
        .map_err(|reason| ConnectError {
            host: "the daemon the docker CLI would use".to_string(),
            cause: ConnectCause::Address(reason),
        })?;
    connect(endpoint)
}

type Connected = (
    Result<Docker, bollard::errors::Error>,
    Option<Tunnel>,
    RawTarget,
);

fn tunnelled(dial: Dial) -> Result<Connected, String> {
    let tunnel = Tunnel::start(dial)
        .map_err(|e| format!("could not open a local socket for the connection: {e}"))?;
    let socket = tunnel.socket().to_string_lossy().into_owned();
    let docker = Docker::connect_with_unix(&socket, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION);
    let raw = RawTarget::Unix(tunnel.socket().to_path_buf());
    Ok((docker, Some(tunnel), raw))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `host[:port][/]` → host and port (`default` when none is given).
fn host_port(rest: &str, default: u16) -> Result<(String, u16), String> {
    let rest = rest.trim_end_matches('/');
    let shown = redacted(rest);
    let url = reqwest::Url::parse(&format!("tcp://{rest}"))
        .map_err(|e| format!("{shown:?} is not host:port ({e})"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{shown:?} names no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, url.port().unwrap_or(default)))
}

/// The client TLS settings for `files`: the CA in `ca.pem` (or the system's
/// when there is none), the client certificate when there is one, and no
/// check of the daemon's certificate when `verify` is off.
pub fn tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(crate::crypto::provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?;
    let builder = if files.verify {
        let mut roots = rustls::RootCertStore::empty();
        match &files.ca {
            Some(ca) => {
                for cert in read_certs(ca)? {
                    roots.add(cert).map_err(|e| {
                        format!("{}: not a usable CA certificate: {e}", ca.display())
                    })?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NotVerified(provider)))
    };
    match &files.client {
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: no private key in PEM form ({e})", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: {e}", cert.display()))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: cannot read certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The CLI's `--tls` without `--tlsverify`: the daemon's certificate is not
/// checked, but its signatures on the handshake still are.
#[derive(Debug)]
struct NotVerified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NotVerified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
