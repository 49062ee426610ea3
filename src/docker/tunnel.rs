//! A private unix socket in front of the daemons bollard cannot reach the way
//! the docker CLI does, so the rest of the provider talks to every daemon as
//! to a local one:
//!
//! - `ssh://[user@]host[:port][/socket]`: each connection is the system
//!   `ssh` running `docker system dial-stdio` on the far side, as
//!   `docker -H ssh://` does, so the user's ssh config, keys, agent and known
//!   hosts all apply. (bollard's `ssh` feature drives ssh through a control
//!   master of its own per connection and drops ssh's own messages.)
//! - TLS daemons: our own rustls handshake, so a refused certificate is
//!   reported as such with the CA file named, and the CLI's `--tls` without
//!   `--tlsverify` is possible; bollard's `connect_with_ssl` always verifies
//!   and reports every failure as `client error (Connect)`.
//!
//! bollard speaks plain HTTP to the socket and the bytes pass through as
//! they are, hijacked BuildKit sessions included. Why a connection could not
//! be made (ssh's own messages, the TLS alert) is kept for the diagnostic.
//!
//! The socket is the daemon for whoever can connect to it, so its directory
//! is the owner's alone (0700, whatever the umask). The far side's shell
//! parses the command ssh hands it, so the socket path goes quoted. What ssh
//! says is kept up to its last [`SSH_ERROR_BYTES`], however much it writes.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::process::Command;
use tokio::task::JoinHandle;

use super::endpoint::redacted;

/// How long ssh may take to connect, as the docker CLI gives it.
const SSH_CONNECT_TIMEOUT_SECS: u32 = 30;
/// TCP connect plus TLS handshake to a daemon.
const TLS_DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// The last lines of ssh's stderr kept for a diagnostic, and the most of
/// its stderr read into memory (its end).
const SSH_ERROR_LINES: usize = 8;
const SSH_ERROR_BYTES: usize = 8 * 1024;

/// How one connection to the daemon is made.
pub enum Dial {
    Ssh(SshTarget),
    Tls(TlsTarget),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// The daemon's socket on the far side, when not the default.
    pub socket: Option<String>,
}

impl SshTarget {
    /// Parses `ssh://[user@]host[:port][/path/to/socket]`. Messages show
    /// the URL with its password, if any, as `***`.
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let shown = redacted(url);
        let parsed =
            reqwest::Url::parse(url).map_err(|e| format!("{shown:?} is not an ssh:// URL: {e}"))?;
        if parsed.scheme() != "ssh" {
            return Err(format!("{shown:?} is not an ssh:// URL"));
        }
        if parsed.password().is_some() {
            return Err(format!(
                "{shown:?} holds a password; ssh:// daemons authenticate with keys or an agent (the \
                 ssh config's IdentityFile)"
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!(
                "{shown:?}: an ssh:// daemon address takes no query or fragment"
            ));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{shown:?} names no host after ssh://"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let path = percent_decoded(parsed.path())
            .ok_or_else(|| format!("{shown:?}: the socket path is not UTF-8"))?;
        Ok(SshTarget {
            host,
            user: Some(parsed.username())
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            port: parsed.port(),
            socket: (!path.is_empty() && path != "/").then_some(path),
        })
    }

    /// The arguments to `ssh`: the same command the docker CLI runs. ssh
    /// joins the remote command's words with spaces for the far side's shell,
    /// so the socket path is quoted: one word, whatever it holds.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-o".into(),
            format!("ConnectTimeout={SSH_CONNECT_TIMEOUT_SECS}"),
            // Nobody can answer a prompt inside terraform: fail instead of waiting.
            "-o".into(),
            "BatchMode=yes".into(),
            "-T".into(),
        ];
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend(["--".into(), self.host.clone(), "docker".into()]);
        if let Some(socket) = &self.socket {
            args.extend(["--host".into(), shell_quoted(&format!("unix://{socket}"))]);
        }
        args.extend(["system".into(), "dial-stdio".into()]);
        args
    }
}

/// `%XX` escapes of a URL path decoded, as the docker CLI reads the path;
/// `None` if the result is not UTF-8.
fn percent_decoded(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `word` as one word for a POSIX shell: as it is when it holds nothing the
/// shell would read, else in single quotes (a `'` inside becomes `'\''`).
fn shell_quoted(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

pub struct TlsTarget {
    pub host: String,
    pub port: u16,
    pub config: Arc<rustls::ClientConfig>,
    /// Named in a refused handshake: the CA the daemon's certificate must
    /// chain to, and the client certificate sent, if any.
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
}

/// The socket and the task accepting on it; dropping it stops accepting.
pub struct Tunnel {
    socket: PathBuf,
    _dir: tempfile::TempDir,
    accept: JoinHandle<()>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Tunnel {
    /// Listens on a new socket in a private (0700) directory. Needs a tokio runtime.
    pub fn start(dial: Dial) -> io::Result<Tunnel> {
        // Made 0700 (the umask can only narrow that), then set to exactly
        // 0700: a umask of 0200 would leave no room for the socket.
        let private = std::fs::Permissions::from_mode(0o700);
        let dir = tempfile::Builder::new()
            .prefix("stevedore-daemon")
            .permissions(private.clone())
            .tempdir()?;
        std::fs::set_permissions(dir.path(), private)?;
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket)?;
        let last_error = Arc::new(Mutex::new(None));
        let accept = tokio::spawn(accept_loop(listener, Arc::new(dial), last_error.clone()));
        Ok(Tunnel {
            socket,
            _dir: dir,
            accept,
            last_error,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Why the most recent connection could not be made, if one could not.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: UnixListener, dial: Arc<Dial>, errors: Arc<Mutex<Option<String>>>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::debug!(error = %e, "tunnel accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let dial = dial.clone();
        let errors = errors.clone();
        tokio::spawn(async move {
            match &*dial {
                Dial::Ssh(target) => through_ssh(stream, target, &errors).await,
                Dial::Tls(target) => through_tls(stream, target, &errors).await,
            }
        });
    }
}

/// Keeps why a connection failed. Called before the client's end of the
/// socket closes, so the reason is there by the time its request fails.
fn record(errors: &Mutex<Option<String>>, why: String) {
    tracing::debug!(error = %why, "daemon connection failed");
    if let Ok(mut last) = errors.lock() {
        *last = Some(why);
    }
}

/// One connection through `ssh ... docker system dial-stdio`. ssh's exit and
/// its stderr are collected before the client sees the connection close, so a
/// failed login is known by the time the first request fails.
async fn through_ssh(mut client: UnixStream, target: &SshTarget, errors: &Mutex<Option<String>>) {
    if let Err(why) = ssh_session(&mut client, target, errors).await {
        record(errors, why);
    }
}

async fn ssh_session(
    client: &mut UnixStream,
    target: &SshTarget,
    errors: &Mutex<Option<String>>,
) -> Result<(), String> {
    let mut child = Command::new("ssh")
        .args(target.ssh_args())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("could not run ssh ({e}); ssh:// daemons need the OpenSSH client on PATH")
        })?;
    let (Some(mut stdin), Some(mut stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("ssh started without its pipes".to_string());
    };
    let said = tokio::spawn(stderr_tail(stderr));
    let (mut from_client, mut to_client) = client.split();
    let upstream = async {
        let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
        drop(stdin);
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
        let status = child.wait().await;
        let said = said.await.unwrap_or_default();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => record(errors, ssh_failure(target, &s.to_string(), &said)),
            Err(e) => record(errors, ssh_failure(target, &e.to_string(), &said)),
        }
        let _ = to_client.shutdown().await;
    };
    tokio::join!(upstream, downstream);
    Ok(())
}

/// The last [`SSH_ERROR_LINES`] non-empty lines of the last
/// [`SSH_ERROR_BYTES`] a reader gives, joined by `; `: a peer that writes
/// without end, or without a newline, costs no more memory than that.
async fn stderr_tail(mut from: impl AsyncRead + Unpin) -> String {
    let mut kept: Vec<u8> = Vec::with_capacity(2 * SSH_ERROR_BYTES);
    let mut cut = false;
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => kept.extend_from_slice(&buf[..n]),
        }
        if kept.len() > SSH_ERROR_BYTES {
            kept.drain(..kept.len() - SSH_ERROR_BYTES);
            cut = true;
        }
    }
    let text = String::from_utf8_lossy(&kept);
    // A line cut at its start is dropped, unless it is all there is.
    let text = match text.split_once('\n') {
        Some((_, whole)) if cut => whole,
        _ => &text,
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(SSH_ERROR_LINES)..].join("; ")
}

fn ssh_failure(target: &SshTarget, status: &str, said: &str) -> String {
    let who = match &target.user {
        Some(u) => format!("{u}@{}", target.host),
        None => target.host.clone(),
    };
    if said.is_empty() {
        format!("ssh to {who} ended ({status}) without a message")
    } else {
        format!(
            "ssh to {who} failed ({status}): {}",
            said.trim_end_matches('.')
        )
    }
}

async fn through_tls(mut client: UnixStream, target: &TlsTarget, errors: &Mutex<Option<String>>) {
    if let Err(why) = tls_session(&mut client, target).await {
        record(errors, why);
    }
}

async fn tls_session(client: &mut UnixStream, target: &TlsTarget) -> Result<(), String> {
    let address = format!("{}:{}", target.host, target.port);
    let name = ServerName::try_from(target.host.clone())
        .map_err(|_| format!("{:?} is not a host name or IP address for TLS", target.host))?;
    let dial = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("could not reach {address}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        tokio_rustls::TlsConnector::from(target.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| handshake_failure(target, &address, &e))
    };
    let mut daemon = match tokio::time::timeout(TLS_DIAL_TIMEOUT, dial).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(why)) => return Err(why),
        Err(_) => {
            return Err(format!(
                "no TLS handshake with {address} within {}s; check that the port is the daemon's TLS port",
                TLS_DIAL_TIMEOUT.as_secs()
            ))
        }
    };
    match tokio::io::copy_bidirectional(client, &mut daemon).await {
        Ok(_) => Ok(()),
        Err(e) if is_alert(&e) => Err(handshake_failure(target, &address, &e)),
        Err(e) => Err(format!(
            "the TLS connection to {address} broke: {}",
            crate::diag::error_chain(&e)
        )),
    }
}

fn handshake_failure(target: &TlsTarget, address: &str, e: &io::Error) -> String {
    use rustls::AlertDescription as Alert;
    let text = crate::diag::error_chain(e);
    let tls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let hint = match (tls_error, &target.client_cert) {
        (Some(rustls::Error::InvalidCertificate(_)), _) => match &target.ca_file {
            Some(ca) => format!(
                "; the daemon's certificate must be issued by the CA in {} and name {:?}",
                ca.display(),
                target.host
            ),
            None => "; put the CA that issued the daemon's certificate in ca.pem in docker_cert_path".to_string(),
        },
        (Some(rustls::Error::AlertReceived(Alert::CertificateRequired | Alert::HandshakeFailure)), None) => {
            "; the daemon requires a client certificate: put cert.pem and key.pem in docker_cert_path".to_string()
        }
        (Some(rustls::Error::AlertReceived(_)), Some(cert)) => format!(
            "; the daemon may not accept the client certificate {}",
            cert.display()
        ),
        _ if text.contains("eof") || text.contains("reset") => {
            "; the port may not speak TLS, or the daemon may want a client certificate (cert.pem \
             and key.pem in docker_cert_path)".to_string()
        }
        _ => String::new(),
    };
    format!("TLS handshake with {address} failed: {text}{hint}")
}

/// A TLS 1.3 server checks the client's certificate after the client thinks
/// the handshake is done: its refusal is the first thing read.
fn is_alert(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::AlertReceived(_)))
}

#[cfg(test)]
#[path = "tunnel_tests.rs"]
mod tests;
