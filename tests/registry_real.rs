//! The registry module against a real CNCF distribution registry on
//! loopback, with the manifest shapes Docker, buildx and Docker Desktop push.

mod registry_fixture;

use registry_fixture::{
    Entry, Flavor, TestRegistry, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use stevedore::oci::Digest;
use stevedore::oci::{Platform, Reference};
use stevedore::registry::{
    inspect, AuthSettings, InspectError, RegistryAuth, RegistryClient, RegistryError,
};

fn client() -> RegistryClient {
    RegistryClient::new(AuthSettings::default())
}

fn reference(registry: &TestRegistry, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", registry.host)).unwrap()
}

fn platform(text: &str) -> Platform {
    Platform::parse(text).unwrap()
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn docker_single_manifest_is_its_own_platform() {
    let registry = TestRegistry::start().await;
    let pushed = registry
        .push_image("web", Some("docker"), Flavor::Docker, "linux/amd64")
        .await;
    let image = reference(&registry, "web:docker");

    let got = inspect(&client(), &image, None).await.unwrap();
    assert_eq!(got.digest, pushed.digest);
    assert_eq!(got.media_type, DOCKER_MANIFEST);
    assert!(!got.is_index);
    assert_eq!(got.platforms, ["linux/amd64"]);
    assert_eq!(got.attestation_count, 0);
    assert_eq!(got.platform_digest.as_deref(), Some(pushed.digest.as_str()));
    assert_eq!(
        got.image_uri,
        Some(format!("{}/web@{}", registry.host, pushed.digest))
    );
    assert_eq!(
        (
            got.os.as_deref(),
            got.architecture.as_deref(),
            got.variant.as_deref()
        ),
        (Some("linux"), Some("amd64"), None)
    );

    let with_platform = inspect(&client(), &image, Some(&platform("linux/amd64")))
        .await
        .unwrap();
    assert_eq!(with_platform, got);
    let err = inspect(&client(), &image, Some(&platform("linux/arm64")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {}/web:docker does not provide linux/arm64; it provides linux/amd64",
            registry.host
        )
    );
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn oci_single_manifest_matches_normalised_platforms() {
    let registry = TestRegistry::start().await;
    let pushed = registry
        .push_image("web", Some("oci"), Flavor::Oci, "linux/arm64/v8")
        .await;
    let image = reference(&registry, "web:oci");

    let got = inspect(&client(), &image, Some(&platform("linux/arm64")))
        .await
        .unwrap();
    assert_eq!(got.media_type, OCI_MANIFEST);
    assert_eq!(got.platforms, ["linux/arm64/v8"]);
    assert_eq!(got.platform_digest.as_deref(), Some(pushed.digest.as_str()));
    assert_eq!(got.variant.as_deref(), Some("v8"));

    // By digest too, and the digest is checked against the bytes.
    let by_digest = reference(&registry, &format!("web@{}", pushed.digest));
    let fetched = client().get_manifest(&by_digest).await.unwrap();
    assert_eq!(fetched.digest, pushed.digest);
    assert_eq!(fetched.media_type, OCI_MANIFEST);
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn docker_manifest_list_without_platform_chooses_nothing() {
    let registry = TestRegistry::start().await;
    let entries = [Entry::Image("linux/amd64"), Entry::Image("linux/arm64/v8")];
    let (index, children) = registry
        .push_index("multi", "v1", Flavor::Docker, &entries)
        .await;
    let image = reference(&registry, "multi:v1");

    let got = inspect(&client(), &image, None).await.unwrap();
    assert_eq!(got.digest, index.digest);
    assert_eq!(got.media_type, DOCKER_LIST);
    assert!(got.is_index);
    assert_eq!(got.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(
        (got.platform_digest, got.image_uri, got.os),
        (None, None, None)
    );

    let arm = inspect(&client(), &image, Some(&platform("linux/arm64")))
        .await
        .unwrap();
    assert_eq!(
        arm.platform_digest.as_deref(),
        Some(children[1].digest.as_str())
    );
    assert_eq!(
        arm.image_uri,
        Some(format!("{}/multi@{}", registry.host, children[1].digest))
    );
    assert_eq!(
        (arm.os.as_deref(), arm.architecture.as_deref()),
        (Some("linux"), Some("arm64"))
    );
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn oci_index_counts_attestations_apart() {
    let registry = TestRegistry::start().await;
    let entries = [
        Entry::Image("linux/amd64"),
        Entry::Attestation,
        Entry::Image("linux/arm64"),
        Entry::Attestation,
    ];
    let (index, children) = registry
        .push_index("buildx", "latest", Flavor::Oci, &entries)
        .await;
    let image = reference(&registry, "buildx");

    let got = inspect(&client(), &image, Some(&platform("linux/amd64")))
        .await
        .unwrap();
    assert_eq!(got.digest, index.digest);
    assert_eq!(got.media_type, OCI_INDEX);
    assert_eq!(got.platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(got.attestation_count, 2);
    assert_eq!(
        got.platform_digest.as_deref(),
        Some(children[0].digest.as_str())
    );
    assert_eq!(got.architecture.as_deref(), Some("amd64"));

    let err = inspect(&client(), &image, Some(&platform("linux/s390x")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "image {}/buildx:latest does not provide linux/s390x; it provides linux/amd64, linux/arm64 (plus 2 attestation manifests)",
            registry.host
        )
    );
}

/// Docker Desktop on Apple Silicon: arm64 plus an attestation. ECS Fargate
/// fails on it with "does not contain descriptor matching platform".
#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn docker_desktop_arm64_index_is_caught_for_amd64() {
    let registry = TestRegistry::start().await;
    let entries = [Entry::Image("linux/arm64"), Entry::Attestation];
    let (_, children) = registry
        .push_index("web", "latest", Flavor::Oci, &entries)
        .await;
    let image = reference(&registry, "web:latest");

    let err = inspect(&client(), &image, Some(&platform("linux/amd64")))
        .await
        .unwrap_err();
    assert!(matches!(err, InspectError::PlatformMissing { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "image {}/web:latest does not provide linux/amd64; it provides linux/arm64 (plus 1 attestation manifest)",
            registry.host
        )
    );

    // Without a platform, the only real platform is the choice.
    let got = inspect(&client(), &image, None).await.unwrap();
    assert_eq!(got.platforms, ["linux/arm64"]);
    assert_eq!(got.attestation_count, 1);
    assert_eq!(
        got.platform_digest.as_deref(),
        Some(children[0].digest.as_str())
    );
    assert_eq!(got.architecture.as_deref(), Some("arm64"));
}

/// An index entry claiming amd64 for an arm64 image: what ends in "wrong
/// diff id calculated on extraction" or exec format errors at run time.
#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn index_entry_contradicted_by_its_config_is_rejected() {
    let registry = TestRegistry::start().await;
    let entries = [Entry::Lying {
        claimed: "linux/amd64",
        actual: "linux/arm64",
    }];
    registry
        .push_index("liar", "v1", Flavor::Oci, &entries)
        .await;
    let err = inspect(
        &client(),
        &reference(&registry, "liar:v1"),
        Some(&platform("linux/amd64")),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, InspectError::ConfigMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("claims linux/amd64, but its config says linux/arm64"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn missing_tags_and_repositories_are_not_found() {
    let registry = TestRegistry::start().await;
    registry
        .push_image("web", Some("v1"), Flavor::Docker, "linux/amd64")
        .await;
    for missing in ["web:v2", "nothing:v1"] {
        let err = client()
            .get_manifest(&reference(&registry, missing))
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{missing}: {err:?}");
        assert!(!err.is_transient());
        assert!(
            err.to_string()
                .contains(&format!("{}/{missing}", registry.host)),
            "{err}"
        );
    }
    let err = inspect(&client(), &reference(&registry, "web:v2"), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        InspectError::Registry(RegistryError::NotFound { .. })
    ));
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn unreachable_registry_is_transient() {
    let closed = acceptance_tests::listening::ClosedPort::new();
    let port = closed.port;
    let image = Reference::parse(&format!("127.0.0.1:{port}/web:v1")).unwrap();
    let err = client().get_manifest(&image).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn htpasswd_registry_accepts_the_right_credentials_only() {
    let registry = TestRegistry::start_with_htpasswd("alice", "s3cret-pw").await;
    let pushed = registry
        .push_image("private", Some("v1"), Flavor::Docker, "linux/amd64")
        .await;
    let image = reference(&registry, "private:v1");
    let entry = |password: &str| RegistryAuth {
        address: registry.host.clone(),
        username: Some("alice".into()),
        password: Some(password.into()),
        ..Default::default()
    };

    let with_entry = RegistryClient::new(AuthSettings {
        entries: vec![entry("s3cret-pw")],
        ..Default::default()
    });
    let got = inspect(&with_entry, &image, Some(&platform("linux/amd64")))
        .await
        .unwrap();
    assert_eq!(got.platform_digest.as_deref(), Some(pushed.digest.as_str()));

    let (_dir, config) = registry.docker_config("alice", "s3cret-pw");
    let with_config = RegistryClient::new(AuthSettings {
        docker_config_file: Some(config),
        ..Default::default()
    });
    assert_eq!(
        with_config.get_manifest(&image).await.unwrap().digest,
        pushed.digest
    );

    let wrong = RegistryClient::new(AuthSettings {
        entries: vec![entry("wrong-pw")],
        ..Default::default()
    });
    let err = wrong.get_manifest(&image).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(
        !err.to_string().contains("wrong-pw") && !format!("{err:?}").contains("wrong-pw"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("sent user \"alice\" from registry_auth"),
        "{err}"
    );

    let anonymous = client().get_manifest(&image).await.unwrap_err();
    assert!(
        matches!(anonymous, RegistryError::Unauthorized { .. }),
        "{anonymous:?}"
    );
    assert!(
        anonymous
            .to_string()
            .contains("no credentials are configured"),
        "{anonymous}"
    );
}

/// Regression: without the OCI index type in Accept, distribution refuses to
/// serve an index. This is why every manifest request sends all four types.
#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn registry_refuses_oci_index_without_matching_accept() {
    let registry = TestRegistry::start().await;
    registry
        .push_index(
            "web",
            "latest",
            Flavor::Oci,
            &[Entry::Image("linux/arm64"), Entry::Attestation],
        )
        .await;
    let response = reqwest::Client::new()
        .get(registry.url("/v2/web/manifests/latest"))
        .header("accept", format!("{DOCKER_MANIFEST}, {DOCKER_LIST}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("OCI index found, but accept header does not support OCI indexes"),
        "{body}"
    );

    let fetched = client()
        .get_manifest(&reference(&registry, "web:latest"))
        .await
        .unwrap();
    assert_eq!(fetched.media_type, OCI_INDEX);
}

#[tokio::test]
#[ignore = "needs /usr/bin/docker-registry: run make testacc"]
async fn blobs_are_verified_and_size_limited() {
    let registry = TestRegistry::start().await;
    let digest = registry.push_blob("web", b"{\"os\":\"linux\"}").await;
    let digest = Digest::parse(&digest).unwrap();
    let repo = reference(&registry, "web");
    assert_eq!(
        client().get_blob(&repo, &digest).await.unwrap(),
        b"{\"os\":\"linux\"}"
    );
    let err = client()
        .get_blob_limited(&repo, &digest, 4)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { .. }), "{err:?}");
    let absent = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
    assert!(client()
        .get_blob(&repo, &absent)
        .await
        .unwrap_err()
        .is_not_found());
}
