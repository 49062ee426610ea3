//! Against the real daemon (`make testacc`): `FROM scratch` + `COPY` only,
//! so nothing is pulled and nothing needs emulation.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use stevedore::docker::{
    build, compress_layer, connect, export, ping, remove_image, write_tar_file, BuildError,
    BuildRequest, BuilderKind, ExportError, SecretValue,
};
use tokio_util::sync::CancellationToken;

/// A context dir with a Dockerfile and files, plus a scratch dir for tars.
struct Fixture {
    ctx: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Fixture {
    fn new(dockerfile: &str, files: &[(&str, &[u8])]) -> Self {
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
        for (name, body) in files {
            fs::write(ctx.path().join(name), body).unwrap();
        }
        Fixture {
            ctx,
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn request(&self, platform: &str, tag: &str) -> (BuildRequest, tempfile::NamedTempFile) {
        let tar =
            write_tar_file(self.ctx.path(), Path::new("Dockerfile"), self.work.path()).unwrap();
        let req = BuildRequest {
            context_tar_path: tar.path().to_path_buf(),
            dockerfile: "Dockerfile".to_string(),
            platform: platform.to_string(),
            tag: tag.to_string(),
            labels: BTreeMap::from([("org.example.test".to_string(), "1".to_string())]),
            ..Default::default()
        };
        (req, tar)
    }
}

fn docker() -> bollard::Docker {
    connect(None, None).unwrap()
}

async fn build_and_export(platform: &str, arch: &str) {
    let d = docker();
    ping(&d).await.unwrap();
    let fx = Fixture::new(
        "FROM scratch\nCOPY hello.txt /hello.txt\n",
        &[("hello.txt", b"hi\n")],
    );
    let tag = format!("stevedore-test/build:{}", platform.replace('/', "-"));
    let (req, _tar) = fx.request(platform, &tag);
    let mut lines = Vec::new();
    let built = build(&d, req, CancellationToken::new(), |l| {
        lines.push(l.to_string())
    })
    .await
    .unwrap();
    assert!(built.image_id.starts_with("sha256:"), "{built:?}");
    assert!(
        lines.iter().any(|l| l.contains(": COPY hello.txt")),
        "{lines:?}"
    );

    let out = tempfile::tempdir().unwrap();
    let img = export(&d, &tag, platform, out.path()).await.unwrap();
    assert_eq!(img.architecture, arch);
    assert_eq!(img.os, "linux");
    assert_eq!(
        img.config_digest, built.image_id,
        "config digest is the image id"
    );
    assert_eq!(img.layers.len(), 1);
    let layer = compress_layer(&img.layers[0].path).unwrap();
    assert_eq!(layer.diff_id, img.layers[0].diff_id);

    // Asking for another platform than the one built is the bug we exist for.
    let other = if arch == "amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let err = export(&d, &tag, other, tempfile::tempdir().unwrap().path())
        .await
        .unwrap_err();
    assert!(matches!(err, ExportError::PlatformMismatch { .. }), "{err}");
    remove_image(&d, &tag).await.unwrap();
    remove_image(&d, &tag).await.unwrap(); // already gone is fine
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn scratch_build_for_amd64() {
    build_and_export("linux/amd64", "amd64").await;
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn scratch_build_for_arm64() {
    build_and_export("linux/arm64", "arm64").await;
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn failing_copy_reports_step_and_tail() {
    let d = docker();
    let fx = Fixture::new(
        "FROM scratch\nCOPY present.txt /p\nCOPY missing.txt /m\n",
        &[("present.txt", b"p")],
    );
    let (req, _tar) = fx.request("linux/amd64", "stevedore-test/fail:1");
    let err = build(&d, req, CancellationToken::new(), |_| {})
        .await
        .unwrap_err();
    match &err {
        BuildError::Failed {
            step,
            message,
            log_tail,
        } => {
            assert!(
                step.as_deref().unwrap_or("").contains("COPY missing.txt"),
                "{err}"
            );
            assert!(message.contains("missing.txt"), "{message}");
            assert!(!log_tail.is_empty() && log_tail.len() <= 20, "{log_tail:?}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(err.to_string().contains("build failed at Step 3/"), "{err}");
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn buildkit_and_secrets_are_refused_clearly() {
    let d = docker();
    let fx = Fixture::new("FROM scratch\n", &[]);
    let (mut req, _tar) = fx.request("linux/amd64", "stevedore-test/bk:1");
    req.builder = BuilderKind::BuildKit;
    let err = build(&d, req.clone(), CancellationToken::new(), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::BuildKitUnavailable), "{err}");
    req.builder = BuilderKind::Auto;
    req.secrets
        .insert("npm".to_string(), SecretValue("s3cr3t".to_string()));
    let err = build(&d, req.clone(), CancellationToken::new(), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, BuildError::SecretsNeedBuildKit { .. }),
        "{err}"
    );
    assert!(
        !format!("{err} {req:?}").contains("s3cr3t"),
        "secret leaked"
    );
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn cancelled_build_stops() {
    let d = docker();
    let fx = Fixture::new("FROM scratch\nCOPY a /a\n", &[("a", b"a")]);
    let (req, _tar) = fx.request("linux/amd64", "stevedore-test/cancel:1");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = build(&d, req, cancel, |_| {}).await.unwrap_err();
    assert!(matches!(err, BuildError::Cancelled), "{err}");
}

/// Peak resident set size of this process, in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> u64 {
    let mut s = String::new();
    fs::File::open("/proc/self/status")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn big_layer_exports_and_compresses_with_bounded_memory() {
    const SIZE: usize = 50 * 1024 * 1024;
    let d = docker();
    let fx = Fixture::new("FROM scratch\nCOPY big.bin /big.bin\n", &[]);
    // Random bytes (xorshift), written in chunks so the test itself stays small.
    let mut f = fs::File::create(fx.ctx.path().join("big.bin")).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1024 * 1024];
    for _ in 0..SIZE / chunk.len() {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        std::io::Write::write_all(&mut f, &chunk).unwrap();
    }
    drop(f);
    let before = peak_rss_kib();
    let (req, _tar) = fx.request("linux/amd64", "stevedore-test/big:1");
    build(&d, req, CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let img = export(&d, "stevedore-test/big:1", "linux/amd64", out.path())
        .await
        .unwrap();
    let layer = compress_layer(&img.layers[0].path).unwrap();
    assert!(img.layers[0].size > SIZE as u64);
    assert!(
        layer.size > SIZE as u64 / 2,
        "random data does not compress"
    );
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 40,
        "peak RSS grew by {grown_mib} MiB for a 50 MiB layer"
    );
    remove_image(&d, "stevedore-test/big:1").await.unwrap();
}

/// Regression: the classic builder's cache ignores the platform, so the
/// second build used to come back as the first one's amd64 image.
#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn arm64_after_amd64_of_same_context_is_not_served_from_cache() {
    let d = docker();
    let fx = Fixture::new(
        "FROM scratch\nCOPY same.txt /same.txt\n",
        &[("same.txt", b"same")],
    );
    let (amd, _t1) = fx.request("linux/amd64", "stevedore-test/cache:amd64");
    let first = build(&d, amd, CancellationToken::new(), |_| {})
        .await
        .unwrap();
    let (arm, _t2) = fx.request("linux/arm64", "stevedore-test/cache:arm64");
    let mut lines = Vec::new();
    let second = build(&d, arm, CancellationToken::new(), |l| {
        lines.push(l.to_string())
    })
    .await
    .unwrap();
    assert_ne!(first.image_id, second.image_id, "{lines:?}");
    let out = tempfile::tempdir().unwrap();
    let img = export(&d, "stevedore-test/cache:arm64", "linux/arm64", out.path())
        .await
        .unwrap();
    assert_eq!(img.architecture, "arm64");
    remove_image(&d, "stevedore-test/cache:amd64")
        .await
        .unwrap();
    remove_image(&d, "stevedore-test/cache:arm64")
        .await
        .unwrap();
}
