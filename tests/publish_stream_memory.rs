//! A large layer streams from the daemon to the registry with bounded
//! memory (against the real daemon and docker-registry, `make testacc`).
//! Alone in its own test binary so no other test's allocations move this
//! process's peak RSS.

mod registry_fixture;

use std::fs;
use std::path::Path;

use registry_fixture::TestRegistry;
use stevedore::docker::{
    build, connect_as_the_cli_would, remove_image, BuildRequest, BuilderKind, ContextSource,
};
use stevedore::oci::{Platform, Reference};
use stevedore::publish::{push_streamed, BlobCache};
use stevedore::registry::assemble::Format;
use stevedore::registry::{AuthSettings, RegistryClient};
use tokio_util::sync::CancellationToken;

const SIZE: usize = 200 * 1024 * 1024;
const ALLOWED_GROWTH_MIB: u64 = 64;

/// Peak resident set size of this process, in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("no VmHWM line in /proc/self/status")
}

/// Random bytes (xorshift), written in chunks so the test itself stays small.
fn write_random(path: &Path, size: usize) {
    let mut f = fs::File::create(path).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    let mut chunk = vec![0u8; 1024 * 1024];
    for _ in 0..size / chunk.len() {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        std::io::Write::write_all(&mut f, &chunk).unwrap();
    }
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn a_200_mib_layer_streams_to_the_registry_with_bounded_memory() {
    let daemon = connect_as_the_cli_would().unwrap();
    let d = daemon.docker.clone();
    let registry = TestRegistry::start().await;
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY big.bin /big.bin\n",
    )
    .unwrap();
    write_random(&ctx.path().join("big.bin"), SIZE);
    let tag = format!("stevedore-test/big:{}", std::process::id());
    let req = BuildRequest {
        context: ContextSource {
            dir: ctx.path().to_path_buf(),
            dockerfile: "Dockerfile".into(),
        },
        dockerfile: "Dockerfile".to_string(),
        platform: "linux/amd64".parse().unwrap(),
        tag: tag.clone(),
        builder: BuilderKind::Classic,
        ..Default::default()
    };
    let client = RegistryClient::new(AuthSettings::default());
    let pusher = client.pusher(CancellationToken::new());
    let repo = Reference::parse(&format!("{}/big", registry.host)).unwrap();
    let platform: Platform = "linux/amd64".parse().unwrap();

    let before = peak_rss_kib();
    build(&daemon, req, CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let pushed = push_streamed(
        &d,
        &pusher,
        &repo,
        &tag,
        &platform,
        Format::Docker,
        &BlobCache::disabled(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    remove_image(&d, &tag).await.unwrap();

    assert_eq!(pushed.stats.layers_uploaded, 1);
    eprintln!("peak RSS grew by {grown_mib} MiB streaming a 200 MiB layer");
    assert!(
        grown_mib < ALLOWED_GROWTH_MIB,
        "peak RSS grew by {grown_mib} MiB streaming a 200 MiB layer"
    );
}
