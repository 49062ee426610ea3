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
            // The tests below were written for the classic builder; the
            // BuildKit ones set their own.
            builder: BuilderKind::Classic,
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
async fn secrets_are_refused_by_the_classic_builder() {
    let d = docker();
    let fx = Fixture::new("FROM scratch\n", &[]);
    let (mut req, _tar) = fx.request("linux/amd64", "stevedore-test/bk:1");
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

/// BuildKit through the daemon's own `/session` endpoint: FROM scratch for
/// both architectures, the config checked after `docker save`.
async fn buildkit_build_and_export(builder: BuilderKind, platform: &str, arch: &str) {
    let d = docker();
    let fx = Fixture::new(
        "FROM scratch\nARG GREETING\nLABEL greeting=$GREETING\nCOPY hello.txt /hello.txt\n",
        &[("hello.txt", b"hi from buildkit\n")],
    );
    let tag = format!("stevedore-test/bk:{}", platform.replace('/', "-"));
    let (mut req, _tar) = fx.request(platform, &tag);
    req.builder = builder;
    req.no_cache = true;
    req.build_args.insert("GREETING".into(), "hello".into());
    let mut lines = Vec::new();
    let built = build(&d, req, CancellationToken::new(), |l| {
        lines.push(l.to_string())
    })
    .await
    .unwrap();
    assert!(built.image_id.starts_with("sha256:"), "{built:?}");
    // BuildKit names its vertices `[n/m] INSTR`; the classic builder says `Step n/m : INSTR`.
    assert!(
        lines.iter().any(|l| l.contains("[1/1] COPY hello.txt")),
        "not a BuildKit build: {lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("Step ")), "{lines:?}");

    let inspect = d.inspect_image(&tag).await.unwrap();
    let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("greeting").map(String::as_str), Some("hello"));
    assert_eq!(
        labels.get("org.example.test").map(String::as_str),
        Some("1")
    );

    let out = tempfile::tempdir().unwrap();
    let img = export(&d, &tag, platform, out.path()).await.unwrap();
    assert_eq!(img.architecture, arch);
    assert_eq!(img.os, "linux");
    assert_eq!(img.config_digest, built.image_id);
    assert_eq!(img.layers.len(), 1);
    remove_image(&d, &tag).await.unwrap();
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn buildkit_scratch_build_for_amd64() {
    buildkit_build_and_export(BuilderKind::BuildKit, "linux/amd64", "amd64").await;
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn buildkit_scratch_build_for_arm64() {
    buildkit_build_and_export(BuilderKind::BuildKit, "linux/arm64", "arm64").await;
}

/// This daemon (20.10) has BuildKit, so `auto` must pick it.
#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn auto_picks_buildkit_on_this_daemon() {
    buildkit_build_and_export(BuilderKind::Auto, "linux/arm64", "arm64").await;
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn buildkit_failing_copy_reports_step() {
    let d = docker();
    let fx = Fixture::new(
        "FROM scratch\nCOPY present.txt /p\nCOPY missing.txt /m\n",
        &[("present.txt", b"p")],
    );
    let (mut req, _tar) = fx.request("linux/amd64", "stevedore-test/bkfail:1");
    req.builder = BuilderKind::BuildKit;
    let err = build(&d, req, CancellationToken::new(), |_| {})
        .await
        .unwrap_err();
    let BuildError::Failed {
        step,
        message,
        log_tail,
    } = &err
    else {
        panic!("expected Failed, got {err:?}");
    };
    assert!(
        step.as_deref().unwrap_or("").contains("COPY missing.txt"),
        "{err}"
    );
    assert!(message.contains("missing.txt"), "{message}");
    assert!(!log_tail.is_empty() && log_tail.len() <= 20, "{log_tail:?}");
}

/// FNV-1a 64, as the `proof` program below prints it.
fn fnv1a(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{} {h:016x}\n", bytes.len())
}

/// A static program that writes the length and FNV-1a hash of argv[1] to
/// argv[2]: with nothing to pull, it is the only way a `FROM scratch` build
/// can `RUN` something and show it saw the secret without keeping it.
const PROOF_C: &str = r#"#include <stdio.h>
int main(int argc, char **argv) {
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "w");
    if (argc < 3 || !in || !out) return 1;
    unsigned long long h = 14695981039346656037ULL; long n = 0; int c;
    while ((c = fgetc(in)) != EOF) { h = (h ^ (unsigned char)c) * 1099511628211ULL; n++; }
    fprintf(out, "%ld %016llx\n", n, h);
    return fclose(out);
}
"#;

#[tokio::test]
#[ignore = "acceptance: run make testacc (needs cc with a static libc)"]
async fn buildkit_secret_mount_reaches_run_and_stays_out_of_the_image() {
    const SECRET: &str = "npm-token-5f3c9e1a";
    let d = docker();
    let fx = Fixture::new(
        "FROM scratch\nCOPY proof /proof\n\
         RUN --mount=type=secret,id=npm [\"/proof\", \"/run/secrets/npm\", \"/proof.txt\"]\n",
        &[("proof.c", PROOF_C.as_bytes())],
    );
    let status = std::process::Command::new("cc")
        .args(["-static", "-Os", "-o"])
        .arg(fx.ctx.path().join("proof"))
        .arg(fx.ctx.path().join("proof.c"))
        .status()
        .expect("cc is needed to build the static test program");
    assert!(status.success(), "cc -static failed");

    let tag = "stevedore-test/bksecret:1";
    let (mut req, _tar) = fx.request("linux/amd64", tag);
    req.builder = BuilderKind::Auto;
    req.no_cache = true;
    req.secrets
        .insert("npm".to_string(), SecretValue(SECRET.to_string()));
    let mut lines = Vec::new();
    let built = build(&d, req.clone(), CancellationToken::new(), |l| {
        lines.push(l.to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !format!("{lines:?} {built:?} {req:?}").contains(SECRET),
        "secret leaked"
    );

    let out = tempfile::tempdir().unwrap();
    let img = export(&d, tag, "linux/amd64", out.path()).await.unwrap();
    let proof = fnv1a(SECRET.as_bytes());
    let mut seen = false;
    for layer in &img.layers {
        let bytes = fs::read(&layer.path).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "secret in a layer"
        );
        seen |= bytes.windows(proof.len()).any(|w| w == proof.as_bytes());
    }
    assert!(
        seen,
        "RUN did not see the secret (no {proof:?} in the layers)"
    );
    remove_image(&d, tag).await.unwrap();
}

/// Builds with secrets take bollard's `/grpc` Solve path, which reports the
/// failure as one status: `Failed`, without a step or progress lines.
#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn buildkit_with_secrets_failing_copy_is_failed() {
    let d = docker();
    let fx = Fixture::new("FROM scratch\nCOPY missing.txt /m\n", &[]);
    let (mut req, _tar) = fx.request("linux/amd64", "stevedore-test/bksecretfail:1");
    req.builder = BuilderKind::BuildKit;
    req.secrets
        .insert("npm".to_string(), SecretValue("hush-7d1e".to_string()));
    let err = build(&d, req, CancellationToken::new(), |_| {})
        .await
        .unwrap_err();
    let BuildError::Failed { message, .. } = &err else {
        panic!("expected Failed, got {err:?}");
    };
    assert!(message.contains("missing.txt"), "{message}");
    assert!(!format!("{err} {err:?}").contains("hush-7d1e"));
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn buildkit_honours_target() {
    let d = docker();
    let fx = Fixture::new(
        "FROM scratch AS first\nCOPY a /a\nFROM first AS second\nCOPY b /b\n",
        &[("a", b"a"), ("b", b"b")],
    );
    let tag = "stevedore-test/bktarget:1";
    let (mut req, _tar) = fx.request("linux/amd64", tag);
    req.builder = BuilderKind::BuildKit;
    req.target = Some("first".to_string());
    let mut lines = Vec::new();
    build(&d, req, CancellationToken::new(), |l| {
        lines.push(l.to_string())
    })
    .await
    .unwrap();
    assert!(!lines.iter().any(|l| l.contains("COPY b")), "{lines:?}");
    let out = tempfile::tempdir().unwrap();
    let img = export(&d, tag, "linux/amd64", out.path()).await.unwrap();
    assert_eq!(img.layers.len(), 1, "only stage `first`");
    remove_image(&d, tag).await.unwrap();
}
