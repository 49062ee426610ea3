//! Starts the plugin: socket, optional mTLS, the gRPC services, the
//! handshake line, signal handling and a prompt exit on Shutdown.

use super::conn::Conn;
use super::plugin_proto as pp;
use super::plugin_services::{Broker, Controller, Stdio};
use super::proto::provider_server::ProviderServer;
use super::server::ProviderService;
use super::{handshake, tls, MAX_MESSAGE_BYTES};
use crate::resources::Provider;
use std::io::Write;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct Options {
    /// Serve plaintext and print TF_REATTACH_PROVIDERS instead of the handshake.
    pub debug: bool,
}

pub async fn run(opts: Options) -> Result<(), String> {
    let version = handshake::negotiate(std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok().as_deref());
    let base = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .filter(|v| !v.is_empty())
        .map(Into::into);
    let dir = handshake::socket_dir(base)
        .map_err(|e| format!("cannot create the plugin socket directory: {e}"))?;
    let socket = dir.path().join("plugin.sock");
    let listener = UnixListener::bind(&socket)
        .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;

    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let tls = match (&client_cert, opts.debug) {
        (Some(pem), false) => Some(tls::setup(pem).map_err(|e| e.to_string())?),
        _ => None,
    };
    let cert_field = tls
        .as_ref()
        .map(|t| t.cert_field.clone())
        .unwrap_or_default();

    let shutdown = CancellationToken::new();
    let incoming = accept_loop(listener, tls.map(|t| t.acceptor), shutdown.clone());

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let service = std::sync::Arc::new(ProviderService::new(Provider::new()));
    let provider = ProviderServer::from_arc(service.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(provider)
        .add_service(pp::grpc_controller_server::GrpcControllerServer::new(
            Controller {
                shutdown: shutdown.clone(),
            },
        ))
        .add_service(pp::grpc_stdio_server::GrpcStdioServer::new(Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(pp::grpc_broker_server::GrpcBrokerServer::new(Broker));

    // Handlers go in before the handshake line: from then on the host may signal us.
    handle_signals(opts.debug, shutdown.clone(), service.clone())?;
    announce(opts.debug, version, &socket, &cert_field)?;
    exit_soon_after(shutdown.clone(), dir.path().to_path_buf(), service);

    let stream = tokio_stream::wrappers::ReceiverStream::new(incoming);
    router
        .serve_with_incoming_shutdown(stream, shutdown.cancelled_owned())
        .await
        .map_err(|e| format!("gRPC server failed: {e}"))?;
    tracing::debug!("plugin server stopped");
    drop(dir);
    Ok(())
}

fn announce(
    debug: bool,
    version: u32,
    socket: &std::path::Path,
    cert_field: &str,
) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    let text = if debug {
        format!(
            "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment \
             variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{}'\n",
            handshake::reattach_json(socket)
        )
    } else {
        // NOTE: the only stdout line the host reads; nothing else may be printed there.
        format!("{}\n", handshake::line(version, socket, cert_field))
    };
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write the handshake: {e}"))
}

/// Accepts connections; TLS handshakes run in their own tasks so one slow
/// client cannot hold up the next.
fn accept_loop(
    listener: UnixListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Result<Conn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
            };
            let Some(acceptor) = tls.clone() else {
                if tx.send(Ok(Conn::Plain(stream))).await.is_err() {
                    break;
                }
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok(Conn::Tls(Box::new(s)))).await;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "TLS handshake with the host failed"),
                    Err(_) => tracing::warn!("TLS handshake with the host timed out"),
                }
            });
        }
    });
    rx
}

/// Terraform handles Ctrl-C itself and tells us through StopProvider, so
/// SIGINT is ignored (else the plugin would die mid-apply). In debug mode
/// nobody else will stop us, so Ctrl-C ends the process. SIGTERM always does,
/// after cancelling what is in flight as StopProvider would, so builds and
/// pushes clean up after themselves (local build tags) before the exit.
fn handle_signals(
    debug: bool,
    shutdown: CancellationToken,
    service: std::sync::Arc<ProviderService>,
) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => {
                    if debug {
                        service.stop();
                        shutdown.cancel();
                        return;
                    }
                    tracing::debug!("ignoring SIGINT; Terraform sends StopProvider instead");
                }
                _ = term.recv() => {
                    tracing::info!("SIGTERM: cancelling in-flight operations and exiting");
                    service.stop();
                    shutdown.cancel();
                    return;
                }
            }
        }
    });
    Ok(())
}

/// go-plugin kills a plugin that has not exited two seconds after Shutdown;
/// exit on our own terms before that, even if a stream is still open. What
/// the provider holds (an ssh or TLS tunnel and its socket directory) is
/// dropped first: `exit` runs no destructors.
fn exit_soon_after(
    shutdown: CancellationToken,
    dir: std::path::PathBuf,
    service: std::sync::Arc<ProviderService>,
) {
    tokio::spawn(async move {
        shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        service.forget_configuration();
        let _ = std::fs::remove_dir_all(dir);
        std::process::exit(0);
    });
}
