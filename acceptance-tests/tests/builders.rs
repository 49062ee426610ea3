//! Native builders: provider `builder` blocks route each platform to the daemon
//! that builds it, here a second dockerd the test starts in a network namespace of its own
//! ([`SecondDaemon`]). Each daemon's own event record proves which platforms it built; the
//! registry serves one index over both. Also: a platform moved to another builder plans
//! nothing, a platform listed twice is refused at plan, an unreachable builder fails the
//! apply naming it before anything is built or tagged, and a builder killed mid-build leaves
//! the tags and the state where they were.

use std::fs;
use std::path::Path;
use std::time::Duration;

use acceptance_tests::context::build_context;
use acceptance_tests::daemon_access::Stunnel;
use acceptance_tests::diagnostics::assert_error_contains;
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::media_types::ACCEPT_ALL;
use acceptance_tests::proof::proof_context;
use acceptance_tests::second_daemon::{now, tagged_platforms, SecondDaemon};
use acceptance_tests::tls::TestCa;
use acceptance_tests::{Mode, Registry, Workdir};
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::Value;

const MACHINE_DAEMON: &str = "unix:///var/run/docker.sock";
const LABEL_KEY: &str = "org.stevedore.test.builders";

/// A provider block with `builders` (`name`, `docker_host`, platforms) and one build of
/// `context` for `platforms`, labelled `nonce`, with its outputs.
fn config(
    builders: &[(&str, &str, &[&str])],
    context: &Path,
    repo: &str,
    platforms: &[&str],
    nonce: &str,
) -> String {
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|p| quote(p)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut tf = terraform_block();
    tf += "provider \"stevedore\" {\n";
    for (name, host, platforms) in builders {
        tf += &format!(
            "  builder {{\n    name = {}\n    docker_host = {}\n    platforms = {}\n  }}\n",
            quote(name),
            quote(host),
            list(platforms)
        );
    }
    tf += "}\n";
    tf += &format!(
        "resource \"stevedore_image_build\" \"app\" {{\n  context = {}\n  repository = {}\n  \
         platforms = {}\n  labels = {{ {} = {} }}\n}}\n",
        quote(&context.display().to_string()),
        quote(repo),
        list(platforms),
        quote(LABEL_KEY),
        quote(nonce)
    );
    for name in ["digest", "platform_digests", "built_by"] {
        tf += &format!("output \"{name}\" {{\n  value = stevedore_image_build.app.{name}\n}}\n");
    }
    tf
}

fn get(registry: &Registry, path: &str) -> Response {
    registry
        .request(Method::GET, path)
        .header("Accept", ACCEPT_ALL)
        .send()
        .expect("GET from the registry")
}

/// The digest the registry serves for `web:tag`, or `None` when it serves nothing there.
fn served_digest(registry: &Registry, tag: &str) -> Option<String> {
    let response = get(registry, &format!("/v2/web/manifests/{tag}"));
    if response.status() == 404 {
        return None;
    }
    assert!(response.status().is_success(), "{}", response.status());
    let body = response.bytes().unwrap();
    Some(acceptance_tests::sha256_digest(&body))
}

/// The os/architecture the config of manifest `digest` names.
fn config_platform(registry: &Registry, digest: &str) -> String {
    let manifest: Value = get(registry, &format!("/v2/web/manifests/{digest}"))
        .json()
        .unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value = get(registry, &format!("/v2/web/blobs/{config_digest}"))
        .json()
        .unwrap();
    format!(
        "{}/{}",
        config["os"].as_str().unwrap(),
        config["architecture"].as_str().unwrap()
    )
}

fn context(nonce: &str) -> tempfile::TempDir {
    build_context(&[
        ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", nonce.as_bytes()),
    ])
}

fn nonce(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), now())
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn each_platform_builds_on_the_daemon_its_builder_names_and_moving_it_plans_nothing() {
    let registry = Registry::start();
    let second = SecondDaemon::start();
    let nonce = nonce("route");
    let ctx = context(&nonce);
    let repo = format!("{}/web", registry.address);
    let platforms = ["linux/amd64", "linux/arm64"];
    let since = now();
    let host = second.host();
    // A builder no platform of this build needs is never dialled: its address is nothing.
    let gone = tempfile::tempdir().unwrap();
    let unused = format!("unix://{}/none.sock", gone.path().display());
    let builders: &[(&str, &str, &[&str])] = &[
        ("second", &host, &["linux/arm64"]),
        ("unused", &unused, &["linux/s390x"]),
    ];
    let tf = Workdir::new(
        Mode::Installed,
        &config(builders, ctx.path(), &repo, &platforms, &nonce),
    );
    tf.init().success();
    tf.apply().success();

    let built_by = tf.output("built_by");
    assert_eq!(built_by["linux/amd64"], "default", "{built_by}");
    assert_eq!(built_by["linux/arm64"], "second", "{built_by}");
    // Each daemon's own record: the second built arm64 only, the machine's amd64 only.
    let label = format!("{LABEL_KEY}={nonce}");
    assert_eq!(tagged_platforms(&host, &label, since), ["linux-arm64"]);
    assert_eq!(
        tagged_platforms(MACHINE_DAEMON, &label, since),
        ["linux-amd64"]
    );
    // One index over both, each manifest's config naming its platform.
    let digest = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(
        served_digest(&registry, "latest").as_deref(),
        Some(digest.as_str())
    );
    let platform_digests = tf.output("platform_digests");
    for platform in platforms {
        let manifest = platform_digests[platform].as_str().unwrap();
        assert_eq!(config_platform(&registry, manifest), platform);
    }
    tf.assert_plans_empty();

    // Which daemon builds a platform is not a build input.
    tf.write_config(&config(
        &[("second", &host, &["linux/amd64"])],
        ctx.path(),
        &repo,
        &platforms,
        &nonce,
    ));
    tf.assert_plans_empty();
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_platform_listed_by_two_builders_is_refused_at_plan_naming_both() {
    let ctx = context("twice");
    let tf = Workdir::new(
        Mode::Installed,
        &config(
            &[
                ("graviton", "ssh://ci@arm-a", &["linux/arm64"]),
                ("ampere", "ssh://ci@arm-b", &["linux/arm/v7", "linux/arm64"]),
            ],
            ctx.path(),
            "127.0.0.1:1/web",
            &["linux/arm64"],
            "twice",
        ),
    );
    tf.init().success();
    let stderr = tf.plan().failure();
    assert_error_contains(&stderr, "\"ampere\"");
    assert_error_contains(&stderr, "\"graviton\"");
    assert_error_contains(&stderr, "Platform Claimed By Two Builders");
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn an_unreachable_builder_fails_the_apply_naming_it_before_anything_is_built() {
    let registry = Registry::start();
    let gone = tempfile::tempdir().unwrap();
    let host = format!("unix://{}/gone.sock", gone.path().display());
    let nonce = nonce("unreachable");
    let ctx = context(&nonce);
    let repo = format!("{}/web", registry.address);
    let since = now();
    let tf = Workdir::new(
        Mode::Installed,
        &config(
            &[("far", &host, &["linux/arm64"])],
            ctx.path(),
            &repo,
            &["linux/amd64", "linux/arm64"],
            &nonce,
        ),
    );
    tf.init().success();
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, "builder \"far\"");
    assert_error_contains(&stderr, "gone.sock");
    assert_error_contains(&stderr, "Nothing was tagged");
    assert_eq!(served_digest(&registry, "latest"), None);
    // Connecting comes first: the machine's daemon built nothing either.
    let label = format!("{LABEL_KEY}={nonce}");
    assert!(tagged_platforms(MACHINE_DAEMON, &label, since).is_empty());
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_builder_killed_mid_build_leaves_the_tags_and_the_state_where_they_were() {
    let registry = Registry::start();
    let mut second = SecondDaemon::start();
    let nonce = nonce("killed");
    let repo = format!("{}/web", registry.address);
    let host = second.host();
    // The second daemon is this machine's architecture, so its RUN steps run natively.
    let ctx = proof_context(
        "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\n\
         RUN [\"/proof\", \"/proof\", \"/out.txt\", \"0\"]\n",
    );
    let builders: &[(&str, &str, &[&str])] = &[("second", &host, &["linux/amd64"])];
    let tf = Workdir::new(
        Mode::Installed,
        &config(builders, ctx.path(), &repo, &["linux/amd64"], &nonce),
    );
    tf.init().success();
    tf.apply().success();
    let before = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(tf.output("built_by")["linux/amd64"], "second");

    // Now a step that sleeps two minutes; the builder goes away while it runs.
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\n\
         RUN [\"/proof\", \"/proof\", \"/out.txt\", \"120\"]\n",
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let build_log = logs.path().join("build.log");
    let mut with_log = config(builders, ctx.path(), &repo, &["linux/amd64"], &nonce);
    with_log = with_log.replacen(
        "  labels =",
        &format!(
            "  build_log_file = {}\n  labels =",
            quote(&build_log.display().to_string())
        ),
        1,
    );
    tf.write_config(&with_log);
    let apply = tf.spawn(&["apply", "-auto-approve"]).wait_for_file(
        &build_log,
        "\"120\"",
        Duration::from_secs(150),
        "the RUN step never started",
    );
    std::thread::sleep(Duration::from_millis(500));
    second.kill();
    let stderr = apply.wait().failure();
    assert_error_contains(&stderr, "on builder \"second\"");
    assert_error_contains(&stderr, "were not changed");
    assert_eq!(
        served_digest(&registry, "latest").as_deref(),
        Some(before.as_str())
    );
    let state = tf.resource_values("stevedore_image_build.app");
    assert_eq!(state["digest"], before.as_str(), "{state}");
}

/// A builder reached as a remote machine's daemon is: `tcp://` with TLS and a client
/// certificate (stunnel requiring one, in front of the second daemon's socket).
#[test]
#[ignore = "acceptance: run make testacc"]
fn a_builder_over_tcp_with_tls_and_a_client_certificate_builds_its_platform() {
    let registry = Registry::start();
    let second = SecondDaemon::start();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(ca_dir.path());
    let stunnel = Stunnel::start_for(&ca, &second.socket);
    let client = ca.client("builder");
    let certs = ca.docker_cert_dir(&ca_dir.path().join("docker-certs"), Some(&client));
    let nonce = nonce("tls");
    let ctx = context(&nonce);
    let repo = format!("{}/web", registry.address);
    let since = now();
    let host = format!("tcp://127.0.0.1:{}", stunnel.port);
    let tf_config = config(
        &[("far", &host, &["linux/arm64"])],
        ctx.path(),
        &repo,
        &["linux/amd64", "linux/arm64"],
        &nonce,
    )
    .replacen(
        "    platforms =",
        &format!(
            "    docker_cert_path = {}\n    platforms =",
            quote(&certs.display().to_string())
        ),
        1,
    );
    let tf = Workdir::new(Mode::Installed, &tf_config);
    tf.init().success();
    tf.apply().success();
    assert_eq!(tf.output("built_by")["linux/arm64"], "far");
    let label = format!("{LABEL_KEY}={nonce}");
    assert_eq!(
        tagged_platforms(&second.host(), &label, since),
        ["linux-arm64"]
    );
    assert!(
        stunnel.log().contains("accepted connection"),
        "the build did not go through the TLS terminator:\n{}",
        stunnel.log()
    );
    tf.assert_plans_empty();
}
