//! A BuildKit session of our own: `POST /session` hijacked to HTTP/2, on
//! which the daemon is the gRPC client and we serve what its build asks for:
//! the build context and Dockerfile by `DiffCopy` (so BuildKit requests only
//! the files that changed since its last copy of this context), registry
//! credentials, and secret values. Hand-written because bollard opens its
//! sessions itself, with a closed set of services (no file sync of a
//! directory) and a tar upload of the whole context on every build.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::task::{Context, Poll};

use bollard::auth::DockerCredentials;
use bollard::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard::moby::filesync::packet::file_sync_server::FileSyncServer;
use bollard::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

use super::filesync::Dirs;
use super::raw::{error_message, RawTarget};

/// The gRPC methods a session offers, named in its headers: BuildKit calls
/// only what is listed.
const HEALTH: &str = "/grpc.health.v1.Health/Check";
const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";
const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";
const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";

/// What one build's session serves.
pub(crate) struct Services {
    /// The `context` and `dockerfile` directories.
    pub files: Dirs,
    /// Registry credentials by host, for `cache_from` pulls.
    pub credentials: HashMap<String, DockerCredentials>,
    /// Secret values by id.
    pub secrets: BTreeMap<String, Vec<u8>>,
}

/// An open session; dropping it closes the connection, which ends the
/// session on the daemon's side.
pub(crate) struct Session {
    pub id: String,
    serve: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.serve.abort();
    }
}

/// Opens a session on the daemon. `shared_key` names the context across
/// builds: BuildKit keeps its copy of a context under it and, next time,
/// asks only for the files whose size, mode or mtime changed.
pub(crate) async fn open(
    target: &RawTarget,
    name: &str,
    shared_key: &str,
    services: Services,
) -> Result<Session, String> {
    let id = session_id();
    let mut headers = vec![
        ("Connection", "Upgrade".to_string()),
        ("Upgrade", "h2c".to_string()),
        ("X-Docker-Expose-Session-Uuid", id.clone()),
        ("X-Docker-Expose-Session-Name", name.to_string()),
        ("X-Docker-Expose-Session-Sharedkey", shared_key.to_string()),
    ];
    let mut methods = vec![HEALTH, CREDENTIALS, DIFF_COPY];
    if !services.secrets.is_empty() {
        methods.push(GET_SECRET);
    }
    for method in methods {
        headers.push(("X-Docker-Expose-Session-Grpc-Method", method.to_string()));
    }
    let response = target.post("/session", &headers).await?;
    if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        return Err(error_message(response).await);
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| format!("the session connection was not upgraded: {e}"))?;
    let io = SessionIo(TokioIo::new(upgraded));

    let (_, health) = tonic_health::server::health_reporter();
    let auth = AuthServer::new(Credentials(services.credentials));
    let secrets =
        (!services.secrets.is_empty()).then(|| SecretsServer::new(SecretStore(services.secrets)));
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(auth)
        .add_service(FileSyncServer::new(services.files))
        .add_optional_service(secrets);
    let serve = tokio::spawn(async move {
        let incoming = futures::stream::iter([Ok::<_, std::io::Error>(io)]);
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::debug!(error = %e, "BuildKit session ended with an error");
        }
    });
    Ok(Session { id, serve })
}

/// A session id no other build uses: BuildKit keys sessions by it.
pub(crate) fn session_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "stevedore-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The hijacked connection as tonic's server takes it.
struct SessionIo(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for SessionIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SessionIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SessionIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Registry credentials by host, as configured for the provider.
struct Credentials(HashMap<String, DockerCredentials>);

impl Credentials {
    fn lookup(&self, host: &str) -> Option<&DockerCredentials> {
        let docker_hub = ["docker.io", "registry-1.docker.io", "index.docker.io"];
        self.0.get(host).or_else(|| {
            docker_hub
                .contains(&host)
                .then(|| {
                    docker_hub
                        .iter()
                        .chain(&["https://index.docker.io/v1/"])
                        .find_map(|h| self.0.get(*h))
                })
                .flatten()
        })
    }
}

#[tonic::async_trait]
impl Auth for Credentials {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let answer = match self.lookup(&request.get_ref().host) {
            Some(DockerCredentials {
                identitytoken: Some(token),
                ..
            }) => CredentialsResponse {
                username: String::new(),
                secret: token.clone(),
            },
            Some(DockerCredentials {
                username: Some(user),
                password: Some(password),
                ..
            }) => CredentialsResponse {
                username: user.clone(),
                secret: password.clone(),
            },
            // Anonymous, as for a host we hold nothing for.
            _ => CredentialsResponse::default(),
        };
        Ok(Response::new(answer))
    }

    async fn fetch_token(
        &self,
        _: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented(
            "not offered: BuildKit fetches tokens itself",
        ))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}

/// Secret values, held in memory only and handed out by id.
struct SecretStore(BTreeMap<String, Vec<u8>>);

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.0.get(id) {
            Some(value) => Ok(Response::new(GetSecretResponse {
                data: value.clone(),
            })),
            // BuildKit reports NotFound as "secret <id> not found".
            None => Err(Status::not_found(format!("secret {id} not found"))),
        }
    }
}
