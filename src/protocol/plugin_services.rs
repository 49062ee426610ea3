//! go-plugin's own services that a provider process serves beside
//! tfplugin6.Provider: the controller (Shutdown), stdio mirroring and the
//! broker. Terraform opens no broker connections to providers.

use super::plugin_proto as pp;
use std::pin::Pin;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

type Stream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// GRPCController: Shutdown asks the server to stop; the process then exits.
pub struct Controller {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl pp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<pp::Empty>) -> Result<Response<pp::Empty>, Status> {
        tracing::debug!("GRPCController.Shutdown received");
        self.shutdown.cancel();
        Ok(Response::new(pp::Empty {}))
    }
}

/// GRPCStdio: our logs go straight to stderr, which Terraform reads itself, so
/// this stream carries nothing; it stays open until shutdown.
pub struct Stdio {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl pp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = Stream<pp::StdioData>;

    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        let done = self.shutdown.clone();
        let s = futures::stream::once(async move {
            done.cancelled().await;
        })
        .filter_map(|_| async { None });
        Ok(Response::new(Box::pin(s)))
    }
}

use futures::StreamExt;

/// GRPCBroker: accepted and drained; it ends when the host closes its side.
pub struct Broker;

#[tonic::async_trait]
impl pp::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = Stream<pp::ConnInfo>;

    async fn start_stream(
        &self,
        req: Request<Streaming<pp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let incoming = req.into_inner();
        let s = incoming.filter_map(|item| async move {
            if let Ok(info) = item {
                tracing::debug!(
                    service_id = info.service_id,
                    "ignoring broker connection info"
                );
            }
            None
        });
        Ok(Response::new(Box::pin(s)))
    }
}
