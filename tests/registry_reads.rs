//! What reads cost against a registry that counts requests: a refresh is one
//! HEAD per tag, a repeated inspection one HEAD, an open registry is never
//! asked `GET /v2/`, and concurrent reads share tokens and requests.

#[path = "registry_reads/fake.rs"]
mod fake;

use fake::FakeRegistry;
use stevedore::oci::{Platform, Reference};
use stevedore::registry::cache::{ContentCache, DiskCache};
use stevedore::registry::{inspect, AuthSettings, RegistryClient};

/// Each test's own cache, so runs before it cannot answer for the registry.
fn client() -> RegistryClient {
    RegistryClient::with_cache(AuthSettings::default(), ContentCache::memory_only())
}

fn repo(registry: &FakeRegistry) -> Reference {
    Reference::parse(&format!("{}/web", registry.host))
        .map(|mut r| {
            r.tag = None;
            r
        })
        .unwrap()
}

fn tags(names: &[&str]) -> Vec<String> {
    names.iter().map(|t| t.to_string()).collect()
}

#[tokio::test]
async fn refresh_of_unchanged_tags_is_one_head_per_tag() {
    let registry = FakeRegistry::start(false).await;
    let found = client()
        .tag_digests(&repo(&registry), &tags(&["v1", "v2", "gone"]))
        .await
        .unwrap();
    assert_eq!(
        found["v1"].as_deref(),
        Some(registry.manifest_digest.as_str())
    );
    assert_eq!(found["v2"], found["v1"]);
    assert_eq!(found["gone"], None, "a missing tag is drift, not an error");
    let mut requests = registry.requests();
    requests.sort();
    assert_eq!(
        requests,
        [
            "HEAD /v2/web/manifests/gone",
            "HEAD /v2/web/manifests/v1",
            "HEAD /v2/web/manifests/v2",
        ]
    );
}

#[tokio::test]
async fn a_repeated_inspection_costs_one_head() {
    let registry = FakeRegistry::start(false).await;
    let client = client();
    let image = Reference::parse(&format!("{}/web:v1", registry.host)).unwrap();
    let wanted = Platform::parse("linux/arm64").unwrap();
    let first = inspect(&client, &image, Some(&wanted)).await.unwrap();
    assert_eq!(first.digest, registry.manifest_digest);
    assert!(
        !registry.requests().iter().any(|r| r == "GET /v2/"),
        "an open registry was pinged: {:?}",
        registry.requests()
    );
    registry.clear();
    let again = inspect(&client, &image, Some(&wanted)).await.unwrap();
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.architecture.as_deref(), Some("arm64"));
    assert_eq!(registry.requests(), ["HEAD /v2/web/manifests/v1"]);
}

#[tokio::test]
async fn a_digest_reference_is_still_asked_of_its_repository() {
    let registry = FakeRegistry::start(false).await;
    let client = client();
    let tagged = Reference::parse(&format!("{}/web:v1", registry.host)).unwrap();
    inspect(&client, &tagged, None).await.unwrap();
    // Same bytes, another repository: the cache must not vouch for it.
    let elsewhere = Reference::parse(&format!(
        "{}/other@{}",
        registry.host, registry.manifest_digest
    ))
    .unwrap();
    let err = inspect(&client, &elsewhere, None).await.unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn concurrent_reads_of_one_repository_share_one_token() {
    let registry = FakeRegistry::start(true).await;
    let client = client();
    let repo = repo(&registry);
    let asked: Vec<Vec<String>> = (0..5)
        .map(|i| {
            let tag = if i % 2 == 0 { "v1" } else { "v2" };
            vec![tag.to_string(), format!("missing-{i}")]
        })
        .collect();
    let lookups = asked.iter().map(|tags| client.tag_digests(&repo, tags));
    for found in futures::future::join_all(lookups).await {
        let found = found.unwrap();
        assert!(found.values().any(Option::is_some), "{found:?}");
    }
    let requests = registry.requests();
    let tokens = requests
        .iter()
        .filter(|r| r.starts_with("GET /token"))
        .count();
    assert_eq!(tokens, 1, "{requests:#?}");
    assert!(!requests.iter().any(|r| r == "GET /v2/"), "{requests:#?}");
    // Later reads send the token straight away: no 401 round trip.
    registry.clear();
    client.tag_digests(&repo, &tags(&["v1"])).await.unwrap();
    assert_eq!(registry.requests(), ["HEAD /v2/web/manifests/v1"]);
}

#[tokio::test]
async fn concurrent_reads_of_one_reference_are_coalesced() {
    let registry = FakeRegistry::start(false).await;
    let client = client();
    let image = Reference::parse(&format!("{}/web:v2", registry.host)).unwrap();
    let reads = (0..5).map(|_| inspect(&client, &image, None));
    for inspected in futures::future::join_all(reads).await {
        assert_eq!(inspected.unwrap().digest, registry.manifest_digest);
    }
    let requests = registry.requests();
    let count = |wanted: &str| requests.iter().filter(|r| r.starts_with(wanted)).count();
    assert_eq!(count("HEAD /v2/web/manifests/v2"), 1, "{requests:#?}");
    assert_eq!(count("GET /v2/web/manifests/"), 1, "{requests:#?}");
    assert_eq!(count("GET /v2/web/blobs/"), 1, "{requests:#?}");
}

#[tokio::test]
async fn the_next_process_reads_manifests_and_configs_from_the_shared_cache() {
    let registry = FakeRegistry::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let process = || {
        let disk = DiskCache::new(dir.path().join("registry-content"));
        RegistryClient::with_cache(AuthSettings::default(), ContentCache::with_disk(disk))
    };
    let image = Reference::parse(&format!("{}/web:v1", registry.host)).unwrap();
    inspect(&process(), &image, None).await.unwrap();
    registry.clear();
    let again = inspect(&process(), &image, None).await.unwrap();
    assert_eq!(again.os.as_deref(), Some("linux"));
    assert_eq!(registry.requests(), ["HEAD /v2/web/manifests/v1"]);
}

/// Regression: one 503 or 429 on a manifest read failed a data source, a
/// refresh or the post-push verify.
#[tokio::test]
async fn transient_answers_are_retried_and_a_400_is_not() {
    let registry = FakeRegistry::start(false).await;
    registry.fail_next(503, None);
    registry.fail_next(429, Some("0"));
    let found = client()
        .tag_digests(&repo(&registry), &tags(&["v1"]))
        .await
        .unwrap();
    assert_eq!(
        found["v1"].as_deref(),
        Some(registry.manifest_digest.as_str())
    );
    assert_eq!(
        registry.requests(),
        [
            "HEAD /v2/web/manifests/v1 -> 503",
            "HEAD /v2/web/manifests/v1 -> 429",
            "HEAD /v2/web/manifests/v1",
        ]
    );
    registry.clear();
    registry.fail_next(400, None);
    let err = client()
        .tag_digests(&repo(&registry), &tags(&["v2"]))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(
        registry.requests(),
        ["HEAD /v2/web/manifests/v2 -> 400"],
        "asked once"
    );
}
