//! A 50 MiB layer is exported and compressed with bounded memory (against the
//! real daemon, `make testacc`). Alone in its own test binary so no other
//! test's allocations move this process's peak RSS.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use stevedore::docker::{
    build, compress_layer, connect, export, remove_image, write_tar_file, BuildRequest, BuilderKind,
};
use tokio_util::sync::CancellationToken;

const SIZE: usize = 50 * 1024 * 1024;
const ALLOWED_GROWTH_MIB: u64 = 40;

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
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
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
async fn big_layer_exports_and_compresses_with_bounded_memory() {
    let d = connect(None, None).unwrap();
    let ctx = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY big.bin /big.bin\n",
    )
    .unwrap();
    write_random(&ctx.path().join("big.bin"), SIZE);
    let tag = format!("stevedore-test/big:{}", std::process::id());
    let tar = write_tar_file(ctx.path(), Path::new("Dockerfile"), work.path()).unwrap();
    let req = BuildRequest {
        context_tar_path: tar.path().to_path_buf(),
        dockerfile: "Dockerfile".to_string(),
        platform: "linux/amd64".to_string(),
        tag: tag.clone(),
        labels: BTreeMap::new(),
        builder: BuilderKind::Classic,
        ..Default::default()
    };

    let before = peak_rss_kib();
    build(&d, req, CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let img = export(&d, &tag, "linux/amd64", out.path()).await.unwrap();
    let layer = compress_layer(&img.layers[0].path).unwrap();
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    remove_image(&d, &tag).await.unwrap();

    assert!(img.layers[0].size > SIZE as u64);
    assert!(
        layer.size > SIZE as u64 / 2,
        "random data does not compress"
    );
    eprintln!("peak RSS grew by {grown_mib} MiB for a 50 MiB layer");
    assert!(
        grown_mib < ALLOWED_GROWTH_MIB,
        "peak RSS grew by {grown_mib} MiB for a 50 MiB layer"
    );
}
