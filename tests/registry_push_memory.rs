//! A large layer is streamed from disk, not read into memory. Alone in its
//! own test binary so no other test's allocations move the peak RSS.

mod registry_fixture;
mod registry_push_support;

use registry_fixture::TestRegistry;
use registry_push_support::{peak_rss, write_layer};
use stevedore::oci::Reference;
use stevedore::registry::{AuthSettings, BlobPush, RegistryClient};
use tokio_util::sync::CancellationToken;

const LAYER: u64 = 200 * 1024 * 1024;
const ALLOWED_GROWTH: u64 = 64 * 1024 * 1024;

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn a_200_mb_layer_pushes_with_bounded_memory() {
    let registry = TestRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let layer = write_layer(&dir.path().join("big"), 42, LAYER);
    let client = RegistryClient::new(AuthSettings::default());
    let pusher = client.pusher(CancellationToken::new());
    let target = Reference::parse(&format!("{}/big", registry.host)).unwrap();

    let before = peak_rss();
    let pushed = pusher
        .push_blob_file(&target, &layer.path, &layer.digest, layer.size)
        .await
        .unwrap();
    let growth = peak_rss().saturating_sub(before);

    assert_eq!(pushed, BlobPush::Uploaded);
    assert!(pusher.blob_exists(&target, &layer.digest).await.unwrap());
    eprintln!(
        "peak RSS grew by {} KiB pushing {} MiB",
        growth / 1024,
        LAYER >> 20
    );
    assert!(
        growth < ALLOWED_GROWTH,
        "peak RSS grew by {growth} bytes pushing a {LAYER}-byte layer"
    );
}
