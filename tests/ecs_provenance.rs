//! `require_provenance`'s check of one manifest against a real CNCF
//! distribution registry (no referrers API, so the `sha256-<hex>` fallback
//! index lists the referrers): provenance pushed as stevedore_image_build
//! publishes it is proven when signed by the key about that manifest, and
//! each way of falling short is refused with its reason.

mod provenance_support;
mod registry_fixture;

use provenance_support::{key_pair, push_provenance, statement, Evidence, BUILDER};
use registry_fixture::{Flavor, TestRegistry};
use stevedore::oci::dsse::{PublicKey, VerifyError};
use stevedore::oci::{Digest, Reference};
use stevedore::registry::{AuthSettings, RegistryClient};
use stevedore::resources::ecs_redeploy::provenance::{
    prove_manifest, Policy, ProvenanceError, Reason,
};

/// A repository holding one linux/amd64 image; its manifest's digest.
async fn image(registry: &TestRegistry, name: &str) -> (Reference, Digest) {
    let pushed = registry
        .push_image(name, Some("v1"), Flavor::Oci, "linux/amd64")
        .await;
    let repo = Reference::parse(&format!("{}/{name}", registry.host)).unwrap();
    let repo = Reference {
        tag: None,
        digest: None,
        ..repo
    };
    (repo, Digest::parse(&pushed.digest).unwrap())
}

fn policy(public_pem: &str, prefix: Option<&str>) -> Policy {
    Policy {
        key: PublicKey::from_pem(public_pem.as_bytes()).unwrap(),
        builder_prefix: prefix.map(str::to_string),
    }
}

/// The reason `manifest` is refused.
async fn refused(
    client: &RegistryClient,
    repo: &Reference,
    manifest: &Digest,
    policy: &Policy,
) -> (Reason, String) {
    match prove_manifest(client, repo, manifest, policy).await {
        Err(ProvenanceError::NotProven(refusal)) => (refusal.reason.clone(), refusal.to_string()),
        other => panic!("{repo}@{manifest}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn provenance_is_proven_only_when_signed_by_the_key_about_the_manifest() {
    let registry = TestRegistry::start().await;
    let client = RegistryClient::new(AuthSettings::default());
    let (key, public) = key_pair();
    let (other_key, _) = key_pair();
    let acme = policy(&public, Some("https://github.com/acme/"));

    // Signed by our key, about the manifest, by an acme builder.
    let (repo, manifest) = image(&registry, "good").await;
    let about_it = statement(&repo, &manifest, BUILDER);
    push_provenance(&client, &repo, &manifest, Evidence::Signed(&key, about_it)).await;
    prove_manifest(&client, &repo, &manifest, &acme)
        .await
        .unwrap();
    prove_manifest(&client, &repo, &manifest, &policy(&public, None))
        .await
        .unwrap();

    // Nothing attached.
    let (repo, manifest) = image(&registry, "none").await;
    let (reason, text) = refused(&client, &repo, &manifest, &acme).await;
    assert_eq!(reason, Reason::NoProvenance);
    assert!(
        text.contains("provenance = true and signing_key_file"),
        "{text}"
    );

    // The statement itself, unsigned.
    let (repo, manifest) = image(&registry, "unsigned").await;
    let about_it = statement(&repo, &manifest, BUILDER);
    push_provenance(&client, &repo, &manifest, Evidence::Unsigned(about_it)).await;
    let (reason, text) = refused(&client, &repo, &manifest, &acme).await;
    assert!(matches!(reason, Reason::Unsigned { .. }), "{text}");

    // Signed by another key.
    let (repo, manifest) = image(&registry, "other-key").await;
    let about_it = statement(&repo, &manifest, BUILDER);
    let signed = Evidence::Signed(&other_key, about_it);
    push_provenance(&client, &repo, &manifest, signed).await;
    let (reason, text) = refused(&client, &repo, &manifest, &acme).await;
    assert!(
        matches!(
            reason,
            Reason::BadSignature(VerifyError::NoSignatureByKey { .. })
        ),
        "{text}"
    );
    assert!(
        text.contains(&other_key.key_id()) && text.contains(&key.key_id()),
        "{text}"
    );

    // Signed, but about another image (the provenance of "good", copied).
    let (repo, manifest) = image(&registry, "other-subject").await;
    let elsewhere = Digest::sha256_of(b"another manifest");
    let about_other = statement(&repo, &elsewhere, BUILDER);
    push_provenance(
        &client,
        &repo,
        &manifest,
        Evidence::Signed(&key, about_other),
    )
    .await;
    let (reason, text) = refused(&client, &repo, &manifest, &acme).await;
    assert!(matches!(reason, Reason::OtherSubject { .. }), "{text}");
    assert!(text.contains(elsewhere.as_str()), "{text}");

    // Signed, about it, by another builder; an unsigned one beside it
    // does not hide that.
    let (repo, manifest) = image(&registry, "other-builder").await;
    let by_else = statement(&repo, &manifest, "https://ci.example/builder");
    let unsigned = statement(&repo, &manifest, BUILDER);
    push_provenance(&client, &repo, &manifest, Evidence::Unsigned(unsigned)).await;
    push_provenance(&client, &repo, &manifest, Evidence::Signed(&key, by_else)).await;
    let (reason, text) = refused(&client, &repo, &manifest, &acme).await;
    assert_eq!(
        reason,
        Reason::OtherBuilder {
            found: Some("https://ci.example/builder".to_string()),
            wanted: "https://github.com/acme/".to_string(),
        },
        "{text}"
    );
    // Without a builder prefix the same referrer passes.
    prove_manifest(&client, &repo, &manifest, &policy(&public, None))
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn an_unreachable_registry_is_a_registry_error() {
    let (_, public) = key_pair();
    let port = registry_fixture::free_port();
    let repo = Reference::parse(&format!("127.0.0.1:{port}/web")).unwrap();
    let manifest = Digest::sha256_of(b"manifest");
    let client = RegistryClient::new(AuthSettings::default());
    let got = prove_manifest(&client, &repo, &manifest, &policy(&public, None)).await;
    assert!(matches!(got, Err(ProvenanceError::Registry(_))), "{got:?}");
}
