//! Self-tests of the harness fixtures: the registry starts and serves back, byte for byte,
//! every image shape the pusher crafts. They need docker-registry and skopeo, so they are
//! ignored like the acceptance tests.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use acceptance_tests::{sha256_digest, Mode, Pushed, Pusher, Registry, Workdir};
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use acceptance_tests::media_types::ACCEPT_ALL;

/// Fetches `reference` (tag or digest) of `pushed`'s repository; checks the served bytes hash
/// to `want_digest` and returns the parsed manifest.
fn fetch(reg: &Registry, pushed: &Pushed, reference: &str, want_digest: &str) -> Value {
    let name = pushed.repository.split_once('/').unwrap().1;
    let mut req = Client::new()
        .get(format!("{}/v2/{name}/manifests/{reference}", reg.url()))
        .header(ACCEPT, ACCEPT_ALL);
    if let Some(c) = &reg.credentials {
        req = req.basic_auth(&c.username, Some(&c.password));
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{reference}");
    let media_type = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_string();
    let bytes = resp.bytes().unwrap();
    assert_eq!(sha256_digest(&bytes), want_digest);
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(manifest["mediaType"], media_type.as_str());
    manifest
}

fn assert_served(reg: &Registry, pushed: &Pushed) {
    let top = fetch(
        reg,
        pushed,
        pushed.reference.rsplit(':').next().unwrap(),
        &pushed.digest,
    );
    assert_eq!(top["mediaType"], pushed.media_type.as_str());
    for image in &pushed.images {
        fetch(reg, pushed, &image.digest, &image.digest);
    }
    if pushed.is_index {
        let listed = top["manifests"].as_array().unwrap().len();
        assert_eq!(listed, pushed.images.len() + pushed.attestations.len());
    }
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn every_shape_is_served_back() {
    let reg = Registry::start();
    let push = Pusher::new(&reg);
    let shapes = [
        push.docker_single("docker-single", "v1", "linux/amd64"),
        push.oci_single("oci-single", "v1", "linux/arm64/v8"),
        push.docker_manifest_list("docker-list", "v1"),
        push.oci_index_with_attestation("oci-index", "v1"),
        push.docker_desktop_arm64("desktop", "latest"),
    ];
    for pushed in &shapes {
        assert_served(&reg, pushed);
    }
    let desktop = &shapes[4];
    assert_eq!(desktop.platforms(), ["linux/arm64"]);
    assert_eq!(desktop.attestations.len(), 1);
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn attestation_entry_points_at_its_subject() {
    let reg = Registry::start();
    let pushed = Pusher::new(&reg).oci_index_with_attestation("web", "latest");
    let index = fetch(&reg, &pushed, "latest", &pushed.digest);
    let entry = &index["manifests"][2];
    assert_eq!(entry["platform"]["os"], "unknown");
    assert_eq!(
        entry["annotations"]["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(
        entry["annotations"]["vnd.docker.reference.digest"],
        pushed.platform_digest("linux/amd64")
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn auth_registry_rejects_anonymous_and_accepts_the_password() {
    let reg = Registry::with_auth("u", "p");
    let anonymous = Client::new()
        .get(format!("{}/v2/", reg.url()))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let pushed = Pusher::new(&reg).docker_single("private", "v1", "linux/amd64");
    assert_served(&reg, &pushed);
}

/// skopeo, an independent client, must read the config the pusher wrote for each platform.
#[test]
#[ignore = "acceptance: run make testacc"]
fn skopeo_reads_platform_configs() {
    let reg = Registry::start();
    let pushed = Pusher::new(&reg).docker_manifest_list("multi", "v1");
    for image in &pushed.images {
        let out = std::process::Command::new("skopeo")
            .args(["inspect", "--config", "--tls-verify=false"])
            .arg(format!("docker://{}@{}", pushed.repository, image.digest))
            .output()
            .expect("running skopeo");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(config["architecture"], image.platform.architecture.as_str());
        assert_eq!(config["os"], "linux");
    }
}

/// A command that outlives its timeout is killed with everything it started: terraform runs
/// its real work in a child of its own (panicwrap), so killing only the process the harness
/// started would leave that child, and the provider, loading the machine for later tests.
#[test]
#[ignore = "acceptance: run make testacc"]
fn a_command_that_times_out_is_killed_with_the_processes_it_started() {
    let mut tf = Workdir::new(Mode::Installed, "");
    let pid_file = tf.path.join("child.pid");
    // Stands in for panicwrap: a parent that starts the long-running child and waits.
    let script = format!("sleep 300 & echo $! > '{}'; wait", pid_file.display());
    tf.run_under(vec!["/bin/sh".into(), "-c".into(), script]);
    tf.set_timeout(Duration::from_secs(2));
    let timed_out = panic::catch_unwind(AssertUnwindSafe(|| tf.run(&["version"])));
    let Err(message) = timed_out else {
        panic!("the command ran past its timeout and still succeeded");
    };
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("did not finish within 2s"), "{text}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid.trim()) {
        assert!(
            Instant::now() < deadline,
            "the child {} outlived the killed command",
            pid.trim()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Running, or stopped but not yet reaped by whoever adopted it (a zombie is dead).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
