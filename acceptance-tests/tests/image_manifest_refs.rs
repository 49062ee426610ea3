//! `data "stevedore_image_manifest"` with digest-pinned references, and with credentials
//! fetched from ECR GetAuthorizationToken (`registry_auth { ecr = true }`, moto standing
//! in for ECR) for a registry that is not ECR, through the real terraform CLI.

use acceptance_tests::diagnostics::{assert_error_contains, assert_error_names_attribute};
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::listening::ClosedPort;
use acceptance_tests::moto::{Moto, AWS_ENV};
use acceptance_tests::{acc_test, sha256_digest, Pusher, Registry, Workdir};
use serde_json::{json, Value};

/// One `data "stevedore_image_manifest" "<name>"` per `(name, image, platform)`, each
/// exporting its digest, platforms, platform_digest and image_uri as `<name>`.
fn config(provider: &str, reads: &[(&str, &str, Option<&str>)]) -> String {
    let mut tf = terraform_block() + provider;
    for (name, image, platform) in reads {
        let platform = platform
            .map(|p| format!("  platform = {}\n", quote(p)))
            .unwrap_or_default();
        let m = format!("data.stevedore_image_manifest.{name}");
        tf += &format!(
            "data \"stevedore_image_manifest\" \"{name}\" {{\n  image = {}\n{platform}}}\n\
             output \"{name}\" {{\n  value = {{ digest = {m}.digest, platforms = {m}.platforms, platform_digest = {m}.platform_digest, image_uri = {m}.image_uri }}\n}}\n",
            quote(image)
        );
    }
    tf
}

fn read(digest: &str, platforms: &[&str], platform_digest: &str, repository: &str) -> Value {
    json!({
        "digest": digest,
        "platforms": platforms,
        "platform_digest": platform_digest,
        "image_uri": format!("{repository}@{platform_digest}"),
    })
}

// `repo@digest` reads that manifest whatever the tags say; `repo:tag@digest` reads the
// digest and ignores the tag, as Docker does (the spec names no other rule): the tag
// `v2` below points at another image, and the read must still give the pinned one.
acc_test!(digest_pinned_references_read_the_digest, |mode| {
    let registry = Registry::start();
    let push = Pusher::new(&registry);
    let amd = push.docker_single("web", "v1", "linux/amd64");
    let arm = push.oci_single("web", "v2", "linux/arm64");
    let list = push.docker_manifest_list("web", "list");
    assert_ne!(amd.digest, arm.digest);
    let repo = &amd.repository;
    let tf = Workdir::new(
        mode,
        &config(
            "",
            &[
                ("pinned", &format!("{repo}@{}", amd.digest), None),
                ("both", &format!("{repo}:v2@{}", amd.digest), None),
                (
                    "index",
                    &format!("{repo}@{}", list.digest),
                    Some("linux/arm64"),
                ),
            ],
        ),
    );
    tf.init().success();
    tf.apply().success();
    let amd_read = read(&amd.digest, &["linux/amd64"], &amd.digest, repo);
    assert_eq!(tf.output("pinned"), amd_read);
    assert_eq!(tf.output("both"), amd_read, "the digest wins over the tag");
    assert_eq!(
        tf.output("index"),
        read(
            &list.digest,
            &["linux/amd64", "linux/arm64"],
            list.platform_digest("linux/arm64"),
            repo
        )
    );
    tf.assert_plans_empty();
});

// A digest the repository does not hold fails the plan naming it, also when the
// reference's tag exists: the tag is never read instead.
acc_test!(a_digest_not_in_the_registry_fails_the_read, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    let missing = sha256_digest(b"a manifest nobody pushed");
    let tf = Workdir::new(mode, &config("", &[]));
    tf.init().success();
    for image in [
        format!("{}@{missing}", pushed.repository),
        format!("{}@{missing}", pushed.reference),
    ] {
        tf.write_config(&config("", &[("m", &image, None)]));
        let stderr = tf.plan().failure();
        assert_error_contains(&stderr, "Error: Image Not Found");
        assert_error_contains(&stderr, &format!("{missing} was not found in the registry"));
        assert_error_names_attribute(&stderr, "image");
    }
});

/// `registry_auth` for `address` with `ecr = true`, inside moto's provider block.
fn ecr_provider(moto: &Moto, address: &str, ecr: bool) -> String {
    moto.provider_block_with(&format!(
        "  registry_auth {{\n    address = {}\n    ecr     = {ecr}\n  }}\n",
        quote(address)
    ))
}

// The registry accepts only the user and password moto's authorization token decodes to,
// so the read succeeds only with credentials the provider got from ECR.
acc_test!(ecr_true_fetches_credentials_for_any_address, |mode| {
    let moto = Moto::start();
    let login = moto.ecr_login();
    let registry = Registry::with_auth(&login.username, &login.password);
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    let reads = [("m", pushed.reference.as_str(), Some("linux/amd64"))];
    let provider = ecr_provider(&moto, &registry.address, true);
    // An empty docker config: no credentials of the developer's own can stand in.
    let docker_config = tempfile::tempdir().unwrap();
    let mut env = AWS_ENV.to_vec();
    env.push(("DOCKER_CONFIG", docker_config.path().to_str().unwrap()));
    let tf = Workdir::with_env(mode, &config(&provider, &reads), &env);
    tf.init().success();
    tf.apply().success();
    assert_eq!(
        tf.output("m"),
        read(
            &pushed.digest,
            &["linux/amd64"],
            &pushed.digest,
            &pushed.repository
        )
    );
    tf.assert_plans_empty();

    // Without `ecr = true` the same block gives no credentials, and the registry refuses.
    let provider = ecr_provider(&moto, &registry.address, false);
    tf.write_config(&config(&provider, &reads));
    let stderr = tf.plan().failure();
    assert_error_contains(&stderr, "Error: Registry Authentication Failed");
    assert_error_contains(&stderr, &registry.address);

    // An ECR endpoint that cannot be reached is named as the reason.
    let held = ClosedPort::new();
    let closed = format!("http://{}", held.address());
    let provider = ecr_provider(&moto, &registry.address, true).replace(&moto.url, &closed);
    tf.write_config(&config(&provider, &reads));
    let stderr = tf.plan().failure();
    assert_error_contains(
        &stderr,
        &format!(
            "cannot get an ECR authorization token for {}",
            registry.address
        ),
    );
    assert_error_contains(&stderr, "Connection refused");
    assert!(
        !stderr.contains("DispatchFailure("),
        "the error dumps SDK internals:\n{stderr}"
    );
    assert_error_names_attribute(&stderr, "image");
});
