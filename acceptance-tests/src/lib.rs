//! Acceptance-test harness for terraform-provider-stevedore.
//!
//! Each module has one job: [`tools`] finds terraform and the provider binary, [`registry`] runs a
//! throwaway docker-registry, [`image`] pushes crafted images into it (built from [`layer`] and
//! [`push`], with the [`media_types`] every test names), [`workdir`] drives the terraform CLI in a
//! temp dir, with the provider installed from a filesystem mirror or attached in debug mode
//! ([`reattach`]), chosen by [`Mode`]; [`hcl`] and [`diagnostics`] write configs and read errors;
//! [`fault_proxy`] (over [`http1`]) stands between the provider and a registry and injects the
//! faults registries and networks produce, counting each; [`referrers_front`] adds the OCI 1.1
//! referrers API in front of a registry and checks what clients send it; [`tls`] and
//! [`token_server`] make HTTPS and bearer-token registries; [`moto`] (fake AWS) and [`refusing`]
//! (an AWS endpoint that only errs) stand in for ECS and ECR. [`release`] runs `scripts/release.sh`
//! with a throwaway GPG key, [`zipfile`] reads its zips and computes Terraform's `h1:` hash, and
//! [`provider_registry`] serves the release over the provider registry protocol.
//!
//! Tests needing any of these are `#[ignore]`d, so plain `cargo test` needs nothing
//! installed; `make testacc` runs them with `--include-ignored`.

pub mod acceptor;
pub mod cliconfig;
pub mod context;
pub mod daemon_access;
pub mod diagnostics;
pub mod elf;
pub mod environment;
pub mod evidence;
pub mod fault_proxy;
pub mod hcl;
pub mod http1;
pub mod image;
pub mod layer;
pub mod listening;
pub mod media_types;
pub mod mode;
pub mod moto;
pub mod proof;
pub mod provider_registry;
pub mod push;
pub mod reattach;
pub mod referrers_front;
pub mod refusing;
pub mod registry;
pub mod release;
pub mod run;
pub mod running;
pub mod second_daemon;
pub mod tls;
pub mod token_server;
pub mod tools;
pub mod workdir;
pub mod zipfile;

pub use fault_proxy::{FaultProxy, Faults, Injected};
pub use image::{Entry, Format, Platform, Pushed, Pusher};
pub use mode::Mode;
pub use referrers_front::ReferrersFront;
pub use registry::Registry;
pub use run::Run;
pub use running::Running;
pub use workdir::Workdir;

use sha2::{Digest, Sha256};

/// How many rounds a benchmark runs: `STEVEDORE_BENCH_ROUNDS`, else `default`.
pub fn bench_rounds(default: usize) -> usize {
    std::env::var("STEVEDORE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of benchmark rounds (the upper middle of an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `sha256:<hex>` of `bytes`, as registries name blobs and manifests.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The ids of the local Docker daemon's images (intermediate ones too) that carry `label`
/// (`key=value`), read with the docker CLI, not the provider.
pub fn daemon_images_labelled(label: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["images", "--all", "--quiet", "--no-trunc", "--filter"])
        .arg(format!("label={label}"))
        .output()
        .expect("running docker images");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A loopback port nobody listens on right now (the OS picks it; tiny race accepted).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}
