//! OCI 1.1 referrers against a real CNCF distribution registry (which has no referrers API,
//! so every list is the `sha256-<hex>` fallback index): what a fallback tag that is not a
//! referrers index reads as (GitLab resolves `sha256-<hex>` to the subject itself), and that a
//! push then replaces it with a real index; entries another tool wrote are carried over, and
//! taking ours out leaves theirs.

mod registry_fixture;

use registry_fixture::{Flavor, TestRegistry, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use serde_json::json;
use stevedore::oci::document::{Descriptor, MediaType};
use stevedore::oci::{Digest, Reference};
use stevedore::registry::assemble::{artifact_manifest, ArtifactLayer, EMPTY_CONFIG};
use stevedore::registry::referrers::{fallback_tag, Listing, Referrers};
use stevedore::registry::{AuthSettings, RegistryClient};
use tokio_util::sync::CancellationToken;

fn repo(registry: &TestRegistry) -> Reference {
    Reference::parse(&format!("{}/web", registry.host)).unwrap()
}

/// An artifact about `subject` (a Docker manifest of `size` bytes), ready to push, and the
/// descriptor a referrers list gives it.
fn artifact(
    subject: &Digest,
    size: u64,
    kind: &str,
) -> (stevedore::registry::assemble::Assembled, Descriptor) {
    let layer = ArtifactLayer {
        media_type: kind.to_string(),
        digest: Digest::sha256_of(EMPTY_CONFIG),
        size: EMPTY_CONFIG.len() as u64,
        annotations: Default::default(),
    };
    let about = Descriptor::new(MediaType::from(DOCKER_MANIFEST), size, subject.to_oci());
    let made = artifact_manifest(kind, &layer, &about, &Default::default());
    let mut entry = Descriptor::new(
        MediaType::from(OCI_MANIFEST),
        made.bytes.len() as u64,
        made.digest.to_oci(),
    );
    entry.set_artifact_type(Some(MediaType::from(kind)));
    (made, entry)
}

/// A registry holding one image, `web:v1`; its digest, a client and the repository.
async fn subject_in_registry() -> (TestRegistry, Digest, RegistryClient, Reference) {
    let registry = TestRegistry::start().await;
    let image = registry
        .push_image("web", Some("v1"), Flavor::Docker, "linux/amd64")
        .await;
    let subject = Digest::parse(&image.digest).unwrap();
    let repo = repo(&registry);
    (
        registry,
        subject,
        RegistryClient::new(AuthSettings::default()),
        repo,
    )
}

/// The digests a referrers list names, in its order.
fn listed(read: &Referrers) -> Vec<String> {
    read.descriptors
        .iter()
        .map(|d| d.digest().to_string())
        .collect()
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn a_fallback_tag_that_is_not_an_index_is_no_list_and_is_replaced_by_one() {
    let (registry, subject, client, repo) = subject_in_registry().await;
    let fetched = client
        .get_manifest(&repo.with_digest(&subject))
        .await
        .unwrap();

    // As GitLab does: the fallback tag resolves to the subject itself.
    let body: serde_json::Value = serde_json::from_slice(&fetched.bytes).unwrap();
    registry
        .push_manifest("web", &fallback_tag(&subject), DOCKER_MANIFEST, &body)
        .await;
    let read = client.referrers(&repo, &subject).await.unwrap();
    assert_eq!(read.listing, Listing::Tag);
    assert!(
        read.descriptors.is_empty(),
        "the subject is not its own referrer: {read:?}"
    );

    registry.push_blob("web", EMPTY_CONFIG).await;
    let (made, entry) = artifact(&subject, fetched.bytes.len() as u64, "application/x-report");
    let pusher = client.pusher(CancellationToken::new());
    let pushed = pusher
        .push_referrer(&repo, &made, &subject, &entry)
        .await
        .unwrap();
    assert_eq!(
        pushed.listing,
        Listing::Tag,
        "distribution 2.8 sends no OCI-Subject"
    );
    let read = client.referrers(&repo, &subject).await.unwrap();
    let digests = listed(&read);
    assert_eq!(digests, [made.digest.to_string()]);
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn another_tools_entries_are_kept_and_only_ours_are_taken_out() {
    let (registry, subject, client, repo) = subject_in_registry().await;
    let size = client
        .get_manifest(&repo.with_digest(&subject))
        .await
        .unwrap()
        .bytes
        .len() as u64;
    registry.push_blob("web", EMPTY_CONFIG).await;
    let (theirs, _) = artifact(&subject, size, "application/x-theirs");
    let pusher = client.pusher(CancellationToken::new());
    pusher
        .push_manifest(&repo, &theirs.digest, &theirs.bytes, theirs.media_type)
        .await
        .unwrap();
    let foreign = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": theirs.digest.as_str(),
                       "size": theirs.bytes.len(), "artifactType": "application/x-theirs",
                       "x-their-field": [1, 2]}],
    });
    registry
        .push_manifest("web", &fallback_tag(&subject), OCI_INDEX, &foreign)
        .await;

    let (ours, entry) = artifact(&subject, size, "application/x-ours");
    pusher
        .push_referrer(&repo, &ours, &subject, &entry)
        .await
        .unwrap();
    // Pushing again lists it once.
    pusher
        .push_referrer(&repo, &ours, &subject, &entry)
        .await
        .unwrap();
    let index = client
        .get_manifest(&Reference {
            tag: Some(fallback_tag(&subject)),
            ..repo.clone()
        })
        .await
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    assert_eq!(
        entries[0]["x-their-field"],
        json!([1, 2]),
        "their entry, whole: {index}"
    );
    assert_eq!(entries[1]["digest"], ours.digest.as_str());

    pusher
        .unlist_referrer(&repo, &subject, &ours.digest)
        .await
        .unwrap();
    let read = client.referrers(&repo, &subject).await.unwrap();
    let digests = listed(&read);
    assert_eq!(digests, [theirs.digest.to_string()]);
}
