//! The plugin protocol: the only code that sees protobuf. `handshake` and
//! `tls` do what go-plugin's server does, `server` answers tfplugin6 (through
//! `config_rpcs` and `lifecycle`),
//! `plugin_services` the go-plugin services, and `serve` ties them together.

mod config_rpcs;
pub mod conn;
pub mod convert;
pub mod handshake;
mod lifecycle;
pub mod plugin_services;
pub mod serve;
pub mod server;
pub mod tls;
mod tls_crypto;
mod unsupported;
mod write_only;

pub use crate::crypto::provider as crypto_provider;

#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("tfplugin6");
}

#[allow(clippy::all, clippy::pedantic)]
pub mod plugin_proto {
    tonic::include_proto!("plugin");
}

/// gRPC message limit, as terraform-plugin-go sets it (tonic's default is 4 MiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
