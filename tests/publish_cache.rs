//! The warm path against the real daemon and a real registry (`make
//! testacc`): the second push of the same image sends only config and
//! manifest, without exporting or compressing, and a push to another
//! repository of the same registry mounts the layers instead of uploading.

mod registry_fixture;
mod registry_push_support;

use std::fs;

use registry_fixture::TestRegistry;
use registry_push_support::Proxy;
use stevedore::docker::{
    build, connect_as_the_cli_would, remove_image, BuildRequest, ContextSource,
};
use stevedore::oci::{Platform, Reference};
use stevedore::publish::{push_built, BlobCache, DaemonPush, Ledger, PushStats, PushedManifest};
use stevedore::registry::assemble::Format;
use stevedore::registry::{AuthSettings, RegistryClient};
use tokio_util::sync::CancellationToken;

fn platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    }
}

/// Builds a two-layer `FROM scratch` image with content unique to this run,
/// so no earlier run's cache or registry state can help it.
async fn build_image(tag: &str) {
    let ctx = tempfile::tempdir().unwrap();
    let nonce = format!("{:?}", std::time::SystemTime::now());
    fs::write(ctx.path().join("a.txt"), format!("a {nonce}\n")).unwrap();
    fs::write(
        ctx.path().join("b.txt"),
        format!("b {nonce}\n").repeat(1000),
    )
    .unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n",
    )
    .unwrap();
    build_context(ctx.path(), tag).await;
}

/// Builds the context in `dir` (its `Dockerfile`) as local image `tag`.
async fn build_context(dir: &std::path::Path, tag: &str) {
    let req = BuildRequest {
        context: ContextSource {
            dir: dir.to_path_buf(),
            dockerfile: "Dockerfile".into(),
        },
        dockerfile: "Dockerfile".to_string(),
        platform: platform().parse().unwrap(),
        tag: tag.to_string(),
        ..Default::default()
    };
    let daemon = stevedore::docker::connect_as_the_cli_would().unwrap();
    build(&daemon, req, CancellationToken::new(), |_| {})
        .await
        .unwrap();
}

async fn push(
    docker: &bollard::Docker,
    client: &RegistryClient,
    repo: &str,
    image: &str,
    cache: &BlobCache,
) -> PushedManifest {
    let repo = Reference::parse(repo).unwrap();
    let pusher = client.pusher(CancellationToken::new());
    let wanted: Platform = platform().parse().unwrap();
    push_built(
        docker,
        &pusher,
        &repo,
        image,
        &wanted,
        Format::Oci,
        cache,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn second_push_skips_export_and_compression() {
    let docker = connect_as_the_cli_would().unwrap().docker;
    let registry = TestRegistry::start().await;
    let client = RegistryClient::new(AuthSettings::default());
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::at(cache_dir.path());
    // A tag of this process's own: another run's test on the same daemon has another.
    let tag = &format!("stevedore-test/publish-cache:{}", std::process::id());
    build_image(tag).await;
    let repo = format!("{}/cache/one", registry.host);

    let cold = push(&docker, &client, &repo, tag, &cache).await;
    assert_eq!(
        cold.stats,
        PushStats {
            layers_compressed: 2,
            layers_uploaded: 2,
            ..PushStats::default()
        }
    );

    let warm = push(&docker, &client, &repo, tag, &cache).await;
    assert_eq!(
        warm.stats,
        PushStats {
            export_skipped: true,
            layers_existed: 2,
            ..PushStats::default()
        }
    );
    assert_eq!(warm.digest, cold.digest, "the same manifest");
    assert_eq!(warm.bytes, cold.bytes);

    let elsewhere = format!("{}/cache/two", registry.host);
    let mounted = push(&docker, &client, &elsewhere, tag, &cache).await;
    assert_eq!(
        mounted.stats,
        PushStats {
            export_skipped: true,
            layers_mounted: 2,
            ..PushStats::default()
        }
    );
    assert_eq!(mounted.digest, cold.digest);

    // Without the cache nothing is known: export and compress again, but
    // the registry has every blob, so nothing is uploaded.
    let uncached = push(&docker, &client, &repo, tag, &BlobCache::disabled()).await;
    assert_eq!(
        uncached.stats,
        PushStats {
            layers_compressed: 2,
            layers_existed: 2,
            ..PushStats::default()
        }
    );
    assert_eq!(uncached.digest, cold.digest, "compression is deterministic");
    remove_image(&docker, tag).await.unwrap();
}

/// A registry behind a proxy that records requests, and a local image
/// `stevedore-test/<name>` of one 300 MB layer (from `seed`): long enough to
/// cancel its push halfway.
async fn big_image_behind_a_proxy(name: &str, seed: u64) -> (TestRegistry, Proxy, String) {
    let registry = TestRegistry::start().await;
    let proxy = Proxy::start(&registry.host).await;
    let ctx = tempfile::tempdir().unwrap();
    registry_push_support::write_layer(&ctx.path().join("big.bin"), seed, 300 << 20);
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY big.bin /big.bin\n",
    )
    .unwrap();
    let tag = format!("stevedore-test/{name}:{}", std::process::id());
    build_context(ctx.path(), &tag).await;
    (registry, proxy, tag)
}

/// Cancels `cancel` once `seen` holds, and says when. A push that fails
/// before `seen` ever holds would leave the wait looping for good; past a
/// deadline the test fails instead.
async fn cancel_once(
    cancel: &CancellationToken,
    what: &str,
    seen: impl Fn() -> bool,
) -> std::time::Instant {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !seen() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never started within 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    cancel.cancel();
    std::time::Instant::now()
}

/// StopProvider during a streamed push: once a layer's bytes are on their
/// way (the proxy saw the PATCH), cancelling ends the push within a second
/// and closes the daemon's export stream.
#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn cancelling_a_streamed_push_ends_it_promptly() {
    let docker = connect_as_the_cli_would().unwrap().docker;
    let (_registry, proxy, tag) = big_image_behind_a_proxy("cancel-stream", 99).await;
    let client = RegistryClient::new(AuthSettings::default());
    let cancel = CancellationToken::new();
    let pusher = client.pusher(cancel.clone());
    let repo = Reference::parse(&format!("{}/cancelled", proxy.host)).unwrap();
    let wanted: Platform = platform().parse().unwrap();
    let no_cache = BlobCache::disabled();
    let push = push_built(
        &docker,
        &pusher,
        &repo,
        &tag,
        &wanted,
        Format::Oci,
        &no_cache,
        &cancel,
    );
    let watch = cancel_once(&cancel, "a layer upload (PATCH)", || {
        proxy.requests().iter().any(|(m, _)| m == "PATCH")
    });
    let (result, cancelled_at) = tokio::join!(push, watch);
    let took = cancelled_at.elapsed();
    assert!(
        matches!(result, Err(stevedore::publish::PublishError::Cancelled)),
        "{:?}",
        result.map(|p| p.digest)
    );
    assert!(
        took < std::time::Duration::from_secs(1),
        "ended {took:?} after the cancel"
    );
    remove_image(&docker, &tag).await.unwrap();
}

/// Cancelling while the daemon pushes (StopProvider) ends the attempt
/// within a second, and closing our request stops the daemon's uploads.
#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn cancelling_the_daemons_push_ends_it_promptly() {
    let docker = connect_as_the_cli_would().unwrap().docker;
    let (_registry, proxy, tag) = big_image_behind_a_proxy("cancel-daemon-push", 98).await;
    let client = RegistryClient::new(AuthSettings::default());
    let cancel = CancellationToken::new();
    let repo = Reference::parse(&format!("{}/by-daemon", proxy.host)).unwrap();
    let wanted: Platform = platform().parse().unwrap();
    let no_cache = BlobCache::disabled();
    let ledger = Ledger::default();
    let attempt = DaemonPush {
        docker: &docker,
        registry: &client,
        repo: &repo,
        tag: "latest",
        image: &tag,
        platform: &wanted,
        cache: &no_cache,
        cancel: &cancel,
        ledger: &ledger,
    };
    // The daemon is uploading the big layer once it has started it.
    let watch = cancel_once(&cancel, "the daemon's layer upload", || {
        proxy
            .requests()
            .iter()
            .any(|(m, p)| (m == "PATCH" || m == "PUT") && p.contains("/blobs/uploads/"))
    });
    let (result, cancelled_at) = tokio::join!(attempt.run(), watch);
    let took = cancelled_at.elapsed();
    assert_eq!(result.map(|p| p.digest).unwrap_err(), "cancelled");
    assert!(
        took < std::time::Duration::from_secs(1),
        "ended {took:?} after the cancel"
    );
    // The daemon saw its client go and stopped: no manifest arrives.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|(m, p)| m == "PUT" && p.contains("/manifests/")),
        "{:?}",
        proxy.requests()
    );
    stevedore::docker::remove_image(&docker, &tag)
        .await
        .unwrap();
}

/// The daemon's push names the image `<repository>:<tag>` locally for the
/// push only: a name the user already had is given back to the user's own
/// image afterwards, and a name that was not there is gone again.
#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn the_daemons_push_leaves_local_names_as_a_user_expects() {
    let docker = connect_as_the_cli_would().unwrap().docker;
    let registry = TestRegistry::start().await;
    let client = RegistryClient::new(AuthSettings::default());
    let cancel = CancellationToken::new();
    let wanted: Platform = platform().parse().unwrap();
    let no_cache = BlobCache::disabled();
    let pid = std::process::id();
    let built = format!("stevedore-test/names-built:{pid}");
    build_image(&built).await;
    let kept = Reference::parse(&format!("{}/kept", registry.host)).unwrap();
    let fresh = Reference::parse(&format!("{}/fresh", registry.host)).unwrap();
    let users = format!("{}:v{pid}", kept.repository_reference());
    build_image(&users).await;
    for repo in [&kept, &fresh] {
        let pushed = DaemonPush {
            docker: &docker,
            registry: &client,
            repo,
            tag: &format!("v{pid}"),
            image: &built,
            platform: &wanted,
            cache: &no_cache,
            cancel: &cancel,
            ledger: &Ledger::default(),
        }
        .run()
        .await
        .unwrap();
        assert!(pushed.stats.pushed_by_daemon);
    }
    let id = |name: String| {
        let docker = docker.clone();
        async move { docker.inspect_image(&name).await.ok().and_then(|i| i.id) }
    };
    let before = id(users.clone()).await;
    assert!(before.is_some());
    assert_ne!(before, id(built.clone()).await, "two different images");
    assert_eq!(
        id(users.clone()).await,
        before,
        "the user's name stays on the user's image"
    );
    let made = format!("{}:v{pid}", fresh.repository_reference());
    assert_eq!(id(made).await, None, "a name we made is removed");
    remove_image(&docker, &users).await.unwrap();
    remove_image(&docker, &built).await.unwrap();
}
