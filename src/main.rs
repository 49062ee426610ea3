//! terraform-provider-stevedore: flags, logging, serve.

use stevedore::protocol::{handshake, serve};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("terraform-provider-stevedore {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let debug = args.iter().any(|a| a == "--debug" || a == "-debug");
    if !debug && !handshake::cookie_ok(std::env::var(handshake::COOKIE_KEY).ok().as_deref()) {
        eprintln!("{}", handshake::NOT_A_COMMAND);
        std::process::exit(1);
    }
    stevedore::logging::init();
    // reqwest, bollard and the TLS server share one process-wide crypto
    // provider (see crypto.rs).
    stevedore::crypto::install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-stevedore: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(serve::run(serve::Options { debug })) {
        tracing::error!(error = %e, "provider failed");
        eprintln!("terraform-provider-stevedore: {e}");
        std::process::exit(1);
    }
}
