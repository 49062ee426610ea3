//! `stevedore_image_index` with the real terraform CLI: the CI-matrix way, two
//! builds of one platform each joined into one index (blobs mounted on the same registry,
//! copied to another), the same sources in another order giving the same digest, pinned
//! sources giving the digest at plan time, media types mixed refused and attestation
//! entries dropped, import by `<repository>:<tag>`, and destroy with `keep_remotely = false`.

use std::path::Path;

use acceptance_tests::context::build_context;
use acceptance_tests::diagnostics::assert_error_contains;
use acceptance_tests::fault_proxy::{FaultProxy, Faults};
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::image::Pusher;
use acceptance_tests::media_types::{ACCEPT_ALL, DOCKER_LIST, OCI_INDEX};
use acceptance_tests::{Mode, Registry, Workdir};
use reqwest::Method;
use serde_json::Value;

/// `(status, body)` of `GET /v2/<name>/manifests/<reference>` with every type accepted.
fn manifest(registry: &Registry, name: &str, reference: &str) -> (u16, Value, String) {
    let response = registry
        .request(Method::GET, &format!("/v2/{name}/manifests/{reference}"))
        .header("Accept", ACCEPT_ALL)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().unwrap();
    let digest = acceptance_tests::sha256_digest(&bytes);
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        digest,
    )
}

fn build(name: &str, ctx: &Path, repo: &str, platform: &str) -> String {
    format!(
        "resource \"stevedore_image_build\" {name:?} {{\n  context = {}\n  repository = {}\n  \
         platforms = [{}]\n}}\n",
        quote(&ctx.display().to_string()),
        quote(repo),
        quote(platform)
    )
}

fn index(name: &str, repo: &str, sources: &[String], extra: &str) -> String {
    format!(
        "resource \"stevedore_image_index\" {name:?} {{\n  repository = {}\n  sources = [{}]\n\
         {extra}}}\noutput \"{name}\" {{\n  value = stevedore_image_index.{name}\n}}\n",
        quote(repo),
        sources.join(", ")
    )
}

/// The matrix: one build per platform, each in a repository of its own, then the join.
fn matrix(ctx: &Path, registry: &Registry, other: &Registry, more: &str) -> String {
    let a = format!("{}/web-amd64", registry.address);
    let b = format!("{}/web-arm64", registry.address);
    let sources = [
        "stevedore_image_build.amd64.image_uri".to_string(),
        "stevedore_image_build.arm64.image_uri".to_string(),
    ];
    let reversed = [sources[1].clone(), sources[0].clone()];
    terraform_block()
        + &build("amd64", ctx, &a, "linux/amd64")
        + &build("arm64", ctx, &b, "linux/arm64")
        + &index(
            "app",
            &format!("{}/web", registry.address),
            &sources,
            "  tags = [\"v1\"]\n  keep_remotely = false\n",
        )
        + &index(
            "again",
            &format!("{}/web2", registry.address),
            &reversed,
            "",
        )
        + &index("elsewhere", &format!("{}/web", other.address), &sources, "")
        + more
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_ci_matrix_joins_into_one_index_the_same_everywhere() {
    let registry = Registry::start();
    let other = Registry::start();
    let ctx = build_context(&[
        ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", b"joined\n"),
    ]);
    let tf = Workdir::new(Mode::Installed, &matrix(ctx.path(), &registry, &other, ""));
    tf.init().success();
    tf.apply().success();

    let app = tf.output("app");
    let digest = app["digest"].as_str().unwrap().to_string();
    assert_eq!(app["manifest_media_type"], DOCKER_LIST);
    let (status, served, served_digest) = manifest(&registry, "web", "v1");
    assert_eq!((status, served_digest.as_str()), (200, digest.as_str()));
    let platforms: Vec<String> = served["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "sorted");
    // Every platform manifest is served from the index's repository too.
    for platform in ["linux/amd64", "linux/arm64"] {
        let d = app["platform_digests"][platform].as_str().unwrap();
        assert_eq!(manifest(&registry, "web", d).0, 200, "{platform}");
        assert_eq!(manifest(&other, "web", d).0, 200, "{platform} copied");
    }
    // The same sources, another order, another repository or registry: the same digest.
    assert_eq!(tf.output("again")["digest"], digest.as_str());
    assert_eq!(tf.output("elsewhere")["digest"], digest.as_str());
    tf.assert_plans_empty();

    // Pinned sources: the digest is known at plan time.
    let pinned: Vec<String> = ["amd64", "arm64"]
        .iter()
        .map(|p| {
            quote(
                tf.resource_values(&format!("stevedore_image_build.{p}"))["image_uri"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    let extra = index("pinned", &format!("{}/web3", registry.address), &pinned, "");
    tf.write_config(&matrix(ctx.path(), &registry, &other, &extra));
    let plan = tf.plan_json();
    let change = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "stevedore_image_index.pinned")
        .expect("the pinned index is planned")
        .clone();
    assert_eq!(
        change["change"]["after"]["digest"],
        digest.as_str(),
        "{change}"
    );
    tf.apply().success();
    tf.assert_plans_empty();

    // Destroy with keep_remotely = false removes the index it created, not the builds.
    tf.destroy().success();
    assert_eq!(manifest(&registry, "web", &digest).0, 404);
    let (status, _, _) = manifest(&registry, "web-amd64", "latest");
    assert_eq!(
        status, 200,
        "the build's own image stays (keep_remotely = true)"
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn mixed_media_types_are_refused_and_attestation_entries_dropped() {
    let registry = Registry::start();
    let pusher = Pusher::new(&registry);
    let docker_amd64 = pusher.docker_single("docker-amd64", "v1", "linux/amd64");
    let desktop = pusher.docker_desktop_arm64("desktop", "v1");
    let oci_amd64 = pusher.oci_single("oci-amd64", "v1", "linux/amd64");
    let repo = format!("{}/joined", registry.address);
    let uri =
        |p: &acceptance_tests::image::Pushed| quote(&format!("{}@{}", p.repository, p.digest));

    let mixed = terraform_block() + &index("app", &repo, &[uri(&docker_amd64), uri(&desktop)], "");
    let tf = Workdir::new(Mode::Installed, &mixed);
    tf.init().success();
    let stderr = tf.plan().failure();
    assert_error_contains(&stderr, &docker_amd64.repository);
    assert_error_contains(&stderr, &desktop.repository);
    assert_error_contains(&stderr, "mix media types");

    tf.write_config(
        &(terraform_block() + &index("app", &repo, &[uri(&oci_amd64), uri(&desktop)], "")),
    );
    tf.apply().success();
    let app = tf.output("app");
    assert_eq!(app["manifest_media_type"], OCI_INDEX);
    assert_eq!(app["manifest_format"], "oci");
    let (_, served, _) = manifest(&registry, "joined", "latest");
    let entries = served["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "no attestation entry: {served}");
    assert_eq!(entries[1]["digest"], desktop.platform_digest("linux/arm64"));
    tf.assert_plans_empty();

    // Import by repository:tag gives the same digest and pinned sources.
    let imported = Workdir::new(
        Mode::Installed,
        &(terraform_block() + &index("app", &repo, &[uri(&oci_amd64)], "")),
    );
    imported.init().success();
    imported
        .import("stevedore_image_index.app", &format!("{repo}:latest"))
        .success();
    let state = imported.resource_values("stevedore_image_index.app");
    assert_eq!(state["digest"], app["digest"], "{state}");
    assert_eq!(state["sources"].as_array().unwrap().len(), 2, "{state}");
}

/// A registry that cannot be read at plan time does not block a plan in which nothing about
/// the index changed: a warning, the state kept, no change planned. A changed source still
/// fails the plan, naming it.
#[test]
#[ignore = "acceptance: run make testacc"]
fn sources_that_cannot_be_read_keep_an_unchanged_index_and_fail_a_changed_one() {
    let registry = Registry::start();
    let pusher = Pusher::new(&registry);
    let amd64 = pusher.oci_single("amd64", "v1", "linux/amd64");
    let arm64 = pusher.oci_single("arm64", "v1", "linux/arm64");
    let proxy = FaultProxy::start(&registry, Faults::default());
    let via = |p: &acceptance_tests::image::Pushed| {
        let path = p.repository.replacen(&registry.address, &proxy.address, 1);
        quote(&format!("{path}@{}", p.digest))
    };
    let repo = format!("{}/joined", proxy.address);
    let tf = Workdir::new(
        Mode::Installed,
        &(terraform_block() + &index("app", &repo, &[via(&amd64), via(&arm64)], "")),
    );
    tf.init().success();
    tf.apply().success();
    let digest = tf.output("app")["digest"].clone();

    proxy.set_manifest_reads_down(true);
    let plan = tf.run(&["plan", "-refresh=false", "-detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "no change planned\n{plan}");
    assert!(
        plan.stdout.contains("Sources Not Read") || plan.stderr.contains("Sources Not Read"),
        "{plan}"
    );
    assert!(proxy.injected().manifest_read_503 >= 1, "{}", proxy.log());

    tf.write_config(&(terraform_block() + &index("app", &repo, &[via(&amd64)], "")));
    let stderr = tf.plan().failure();
    assert_error_contains(&stderr, "Sources Cannot Be Joined");
    proxy.set_manifest_reads_down(false);
    assert_eq!(
        tf.resource_values("stevedore_image_index.app")["digest"],
        digest
    );
}
