//! `data "stevedore_image_manifest"` against a real registry, through the real terraform CLI,
//! each test once with the provider installed and once attached (`acc_test!`).

use acceptance_tests::diagnostics::{assert_error_contains, assert_error_names_attribute};
use acceptance_tests::hcl::{provider_block, quote, terraform_block};
use acceptance_tests::listening::ClosedPort;
use acceptance_tests::{acc_test, Mode, Pushed, Pusher, Registry, Run, Workdir};
use serde_json::{json, Map, Value};

/// Every computed attribute, each exported as an output of the same name.
const ATTRIBUTES: [&str; 10] = [
    "digest",
    "media_type",
    "is_index",
    "platforms",
    "attestation_count",
    "platform_digest",
    "image_uri",
    "os",
    "architecture",
    "variant",
];

/// A config reading `image` (and `platform`), with one output per attribute. `variant` is
/// output as "" when null: Terraform drops null outputs, and the spec leaves it unsaid.
fn config(
    registry: &Registry,
    password: Option<&str>,
    image: &str,
    platform: Option<&str>,
) -> String {
    let platform = platform
        .map(|p| format!("  platform = {}\n", quote(p)))
        .unwrap_or_default();
    let mut tf = terraform_block() + &provider_block(registry, password);
    tf += &format!(
        "\ndata \"stevedore_image_manifest\" \"m\" {{\n  image = {}\n{platform}}}\n",
        quote(image)
    );
    for name in ATTRIBUTES {
        let value = match name {
            "variant" => "data.stevedore_image_manifest.m.variant == null ? \"\" : data.stevedore_image_manifest.m.variant".to_string(),
            _ => format!("data.stevedore_image_manifest.m.{name}"),
        };
        tf += &format!("output \"{name}\" {{\n  value = {value}\n}}\n");
    }
    tf
}

/// What every attribute must be for `pushed` read with `platform` (`None`: a single manifest).
fn expected(pushed: &Pushed, platform: Option<&str>) -> Map<String, Value> {
    let image = match platform {
        Some(p) => pushed
            .images
            .iter()
            .find(|i| i.platform.label() == p)
            .expect("pushed"),
        None => &pushed.images[0],
    };
    let values = json!({
        "digest": pushed.digest,
        "media_type": pushed.media_type,
        "is_index": pushed.is_index,
        "platforms": pushed.platforms(),
        "attestation_count": pushed.attestations.len(),
        "platform_digest": image.digest,
        "image_uri": format!("{}@{}", pushed.repository, image.digest),
        "os": image.platform.os,
        "architecture": image.platform.architecture,
        "variant": image.platform.variant.clone().unwrap_or_default(),
    });
    values.as_object().unwrap().clone()
}

/// Applies a config reading `pushed`, checks every output against the truth, then checks
/// both plans are empty.
fn assert_reads(mode: Mode, registry: &Registry, pushed: &Pushed, platform: Option<&str>) {
    let tf = Workdir::new(mode, &config(registry, None, &pushed.reference, platform));
    tf.init().success();
    tf.apply().success();
    let outputs: Map<String, Value> = tf
        .output_json()
        .as_object()
        .expect("outputs object")
        .iter()
        .map(|(name, output)| (name.clone(), output["value"].clone()))
        .collect();
    assert_eq!(
        Value::Object(outputs),
        Value::Object(expected(pushed, platform))
    );
    tf.assert_plans_empty();
}

/// Init, then a plan that must fail; returns its stderr.
fn plan_fails(mode: Mode, tf_config: &str) -> String {
    let tf = Workdir::new(mode, tf_config);
    tf.init().success();
    tf.plan().failure()
}

acc_test!(docker_single_manifest, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    assert_reads(mode, &registry, &pushed, None);
});

acc_test!(oci_single_manifest_with_variant, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).oci_single("web", "v1", "linux/arm64/v8");
    assert_reads(mode, &registry, &pushed, Some("linux/arm64/v8"));
});

acc_test!(docker_manifest_list_resolves_amd64, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).docker_manifest_list("web", "v1");
    assert_reads(mode, &registry, &pushed, Some("linux/amd64"));
});

acc_test!(oci_index_excludes_attestation_from_platforms, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).oci_index_with_attestation("web", "v1");
    assert_reads(mode, &registry, &pushed, Some("linux/arm64"));
});

acc_test!(docker_desktop_index_reads_arm64, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).docker_desktop_arm64("web", "latest");
    assert_reads(mode, &registry, &pushed, Some("linux/arm64"));
});

acc_test!(private_registry_with_password, |mode| {
    let registry = Registry::with_auth("u", "p");
    let pushed = Pusher::new(&registry).oci_index_with_attestation("private/web", "v1");
    assert_reads(mode, &registry, &pushed, Some("linux/amd64"));
});

// The Fargate failure (`CannotPullContainerError ... linux/amd64`) caught at plan time.
acc_test!(docker_desktop_index_lacks_amd64, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).docker_desktop_arm64("web", "latest");
    let stderr = plan_fails(
        mode,
        &config(&registry, None, &pushed.reference, Some("linux/amd64")),
    );
    assert_error_contains(
        &stderr,
        &format!(
            "image {} does not provide linux/amd64; it provides linux/arm64 (plus 1 attestation manifest)",
            pushed.reference
        ),
    );
});

acc_test!(malformed_reference_names_image, |mode| {
    let registry = Registry::start();
    let stderr = plan_fails(mode, &config(&registry, None, "UPPER/Case::x", None));
    assert_error_names_attribute(&stderr, "image");
});

acc_test!(malformed_platform_names_platform, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    let stderr = plan_fails(
        mode,
        &config(&registry, None, &pushed.reference, Some("linux/amd46")),
    );
    assert_error_names_attribute(&stderr, "platform");
});

acc_test!(unreachable_registry_is_an_error, |mode| {
    let registry = Registry::start();
    let held = ClosedPort::new();
    let closed = held.address();
    let stderr = plan_fails(
        mode,
        &config(&registry, None, &format!("{closed}/web:v1"), None),
    );
    assert_error_contains(&stderr, &closed);
    assert_error_contains(&stderr, "is unreachable");
});

acc_test!(wrong_password_is_an_error, |mode| {
    let registry = Registry::with_auth("u", "p");
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    let wrong = "not-the-password-7781";
    let stderr = plan_fails(
        mode,
        &config(&registry, Some(wrong), &pushed.reference, None),
    );
    assert_error_contains(&stderr, &registry.address);
    assert_error_contains(&stderr, "refused the credentials");
    assert!(
        !stderr.contains(wrong),
        "the password leaked into the error:\n{stderr}"
    );
});

acc_test!(password_never_logged_at_trace, |mode| {
    let secret = "s3cret-Pa55word-4412";
    let registry = Registry::with_auth("u", secret);
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    let tf_config = config(&registry, None, &pushed.reference, None);
    let tf = Workdir::logged(mode, &tf_config, &[]);
    let runs: Vec<Run> = vec![tf.init(), tf.apply(), tf.plan()];
    for run in &runs {
        assert!(run.succeeded(), "{run}");
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "password logged:\n{run}"
        );
    }
    // The provider logged the very line that names the credential it built, redacted.
    tf.assert_provider_logged("resolved registry credentials");
    assert!(
        !tf.full_log().contains(secret),
        "password in terraform's or the provider's log"
    );
});
