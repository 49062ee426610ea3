//! `require_provenance` in apply: images live in a real docker-registry,
//! ECS is the fake. An image without signed provenance stops the apply
//! before UpdateService and leaves the state as it was; one with it deploys.

use std::path::Path;

use stevedore::oci::{Digest, Reference};
use stevedore::registry::{AuthSettings, RegistryClient};
use stevedore::value::Value;

use crate::apply::{apply, errors, planned};
use crate::model::Model;
use crate::provenance_support::{key_pair, push_provenance, statement, Evidence, BUILDER};
use crate::registry_fixture::{Flavor, TestRegistry};
use crate::server::FakeEcs;
use crate::*;

/// `prod/web` running `{registry}/web:v1` (linux/amd64) on LINUX/X86_64;
/// the image's repository and manifest digest.
async fn setup(registry: &TestRegistry) -> (FakeEcs, Reference, Digest) {
    let pushed = registry
        .push_image("web", Some("v1"), Flavor::Oci, "linux/amd64")
        .await;
    let image = format!("{}/web:v1", registry.host);
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    let def = m.register("web", &[("app", &image)], Some(("LINUX", "X86_64")));
    m.add_service(CLUSTER, SERVICE, &def, 1);
    let repo = Reference::parse(&format!("{}/web", registry.host)).unwrap();
    let repo = Reference {
        tag: None,
        digest: None,
        ..repo
    };
    let fake = FakeEcs::start(m).await;
    (fake, repo, Digest::parse(&pushed.digest).unwrap())
}

/// A deploying plan with `require_provenance` and `verify_images = false`
/// (the provenance check resolves the images anyway).
fn requiring(key_file: &Path) -> Value {
    let mut p = planned(None, None);
    let block = Value::object([
        ("public_key_file", Value::string(key_file.to_string_lossy())),
        ("builder_id", Value::string("https://github.com/acme/")),
    ]);
    p.set("require_provenance", Value::List(vec![block]));
    p
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn an_image_without_provenance_is_not_deployed() {
    let registry = TestRegistry::start().await;
    let (fake, _, manifest) = setup(&registry).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("provenance.pub");
    std::fs::write(&key_file, key_pair().1).unwrap();

    let r = apply(&fake, Value::Null, requiring(&key_file), Vec::new()).await;
    let errors = errors(&r);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let image = format!("{}/web:v1", registry.host);
    for needle in [
        "Image Provenance Not Proven",
        image.as_str(),
        manifest.as_str(),
        "no provenance: ",
        "provenance = true and signing_key_file",
    ] {
        assert!(errors[0].contains(needle), "{needle}: {errors:?}");
    }
    assert_eq!(fake.count("UpdateService"), 0, "nothing deployed");
    assert_eq!(r.new_state, Value::Null, "nothing created");
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn an_image_with_signed_provenance_is_deployed() {
    let registry = TestRegistry::start().await;
    let (fake, repo, manifest) = setup(&registry).await;
    let (key, public) = key_pair();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("provenance.pub");
    std::fs::write(&key_file, public).unwrap();
    let client = RegistryClient::new(AuthSettings::default());
    let about_it = statement(&repo, &manifest, BUILDER);
    push_provenance(&client, &repo, &manifest, Evidence::Signed(&key, about_it)).await;

    let r = apply(&fake, Value::Null, requiring(&key_file), Vec::new()).await;
    assert!(errors(&r).is_empty(), "{:?}", r.diags);
    assert_eq!(fake.count("UpdateService"), 1);
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn an_unreadable_key_at_apply_deploys_nothing() {
    let registry = TestRegistry::start().await;
    let (fake, _, _) = setup(&registry).await;
    let r = apply(
        &fake,
        Value::Null,
        requiring(Path::new("/nonexistent/provenance.pub")),
        Vec::new(),
    )
    .await;
    let errors = errors(&r);
    assert!(
        errors.len() == 1 && errors[0].starts_with("Invalid Provenance Key"),
        "{errors:?}"
    );
    assert_eq!(fake.count("UpdateService"), 0);
    assert_eq!(fake.count("DescribeServices"), 0, "ECS not even read");
}
