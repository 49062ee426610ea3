//! The provider against a registry that misbehaves as real ones do: every request goes
//! through a [`FaultProxy`] that fails each manifest path once with 503, rate-limits with
//! 429 and `Retry-After`, cuts a blob upload mid-body and holds answers back. The apply
//! must still succeed, what the registry holds is then read DIRECTLY (not through the
//! proxy) and checked blob by blob, a plan through the proxy must be empty, and the
//! proxy's counters must show each fault was really injected.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;

use acceptance_tests::diagnostics::flatten;
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::{acc_test, sha256_digest, FaultProxy, Faults, Pusher, Registry, Workdir};
use serde_json::Value;
use sha2::{Digest, Sha256};

use acceptance_tests::media_types::ACCEPT_ALL as ACCEPT;

/// Size of the incompressible file: above the provider's 4 MiB in-memory limit for a
/// layer, so its layer is streamed as one chunked PATCH, and above the proxy's cut point.
const BIG: usize = 6 * 1024 * 1024;

/// A context of a few files, one of them `BIG` bytes no compressor can shrink, all
/// unique to this run so no cache (daemon, layer, content) already knows them.
fn context(seed: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .unwrap();
    let p = dir.path();
    fs::write(
        p.join("Dockerfile"),
        "FROM scratch\nCOPY app.txt nonce.txt /\nCOPY big.bin /big.bin\n",
    )
    .unwrap();
    fs::write(p.join("app.txt"), "version 1\n").unwrap();
    fs::write(p.join("nonce.txt"), seed).unwrap();
    let mut big = Vec::with_capacity(BIG);
    let mut block = 0u64;
    while big.len() < BIG {
        let mut h = Sha256::new();
        h.update(seed.as_bytes());
        h.update(block.to_le_bytes());
        big.extend_from_slice(&h.finalize());
        block += 1;
    }
    fs::write(p.join("big.bin"), big).unwrap();
    dir
}

fn seed(mode: acceptance_tests::Mode) -> String {
    format!(
        "{mode:?} {} {:?}",
        std::process::id(),
        std::time::SystemTime::now()
    )
}

fn build_config(ctx: &Path, repository: &str) -> String {
    format!(
        "{}resource \"stevedore_image_build\" \"app\" {{\n  context    = {}\n  repository = {}\n  platforms  = [\"linux/amd64\", \"linux/arm64\"]\n}}\noutput \"digest\" {{\n  value = stevedore_image_build.app.digest\n}}\noutput \"platform_digests\" {{\n  value = stevedore_image_build.app.platform_digests\n}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(repository)
    )
}

/// A workdir whose provider starts with empty caches of its own, so every read and every
/// layer really goes to the registry.
fn workdir(mode: acceptance_tests::Mode, tf: &str, cache: &Path) -> Workdir {
    let cache = cache.display().to_string();
    Workdir::with_env(mode, tf, &[("STEVEDORE_CACHE_DIR", cache.as_str())])
}

/// GET from the registry itself; panics unless it answers 200.
fn get(registry: &Registry, path: &str, accept: Option<&str>) -> (String, Vec<u8>) {
    let url = format!("{}/v2/{path}", registry.url());
    let mut req = reqwest::blocking::Client::new().get(&url);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (ct, resp.bytes().unwrap().to_vec())
}

/// A blob of `name`, checked against its descriptor's digest and size.
fn blob(registry: &Registry, name: &str, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let (_, bytes) = get(registry, &format!("{name}/blobs/{digest}"), None);
    assert_eq!(sha256_digest(&bytes), digest, "blob content");
    assert_eq!(
        Some(bytes.len() as u64),
        descriptor["size"].as_u64(),
        "{digest}"
    );
    bytes
}

/// Reads the tag's index and everything under it straight from the registry: exactly
/// linux/amd64 and linux/arm64, no attestation, every manifest and blob there with the
/// digest it is named by, every layer unpacking to its diff_id, one holding the big file.
fn assert_registry_holds(registry: &Registry, name: &str, digest: &str, platforms: &Value) {
    let (ct, bytes) = get(registry, &format!("{name}/manifests/latest"), Some(ACCEPT));
    assert_eq!(
        sha256_digest(&bytes),
        digest,
        "the tag names the applied digest"
    );
    let index: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(index["mediaType"].as_str(), Some(ct.as_str()));
    let entries = index["manifests"].as_array().expect("an index");
    let mut seen = BTreeSet::new();
    for entry in entries {
        assert!(entry.get("annotations").is_none(), "attestation? {entry}");
        let platform = format!(
            "{}/{}",
            entry["platform"]["os"].as_str().unwrap(),
            entry["platform"]["architecture"].as_str().unwrap()
        );
        let manifest_digest = entry["digest"].as_str().unwrap();
        assert_eq!(platforms[&platform], manifest_digest, "{platform}");
        let (_, bytes) = get(
            registry,
            &format!("{name}/manifests/{manifest_digest}"),
            Some(ACCEPT),
        );
        assert_eq!(sha256_digest(&bytes), manifest_digest);
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        let config: Value =
            serde_json::from_slice(&blob(registry, name, &manifest["config"])).unwrap();
        let described = format!(
            "{}/{}",
            config["os"].as_str().unwrap(),
            config["architecture"].as_str().unwrap()
        );
        assert_eq!(described, platform, "the config's platform");
        let layers = manifest["layers"].as_array().unwrap();
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(layers.len(), diff_ids.len());
        let mut biggest = 0;
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&blob(registry, name, layer)[..])
                .read_to_end(&mut tar)
                .unwrap();
            assert_eq!(sha256_digest(&tar), diff_id.as_str().unwrap(), "{platform}");
            biggest = biggest.max(tar.len());
        }
        assert!(biggest > BIG, "{platform}: no layer holds the big file");
        seen.insert(platform);
    }
    let want: BTreeSet<String> = ["linux/amd64", "linux/arm64"].map(String::from).into();
    assert_eq!(seen, want, "exactly the two platforms: {index}");
    assert_eq!(entries.len(), 2, "{index}");
}

acc_test!(a_two_platform_build_survives_every_fault, |mode| {
    let registry = Registry::start();
    let proxy = FaultProxy::start(&registry, Faults::all());
    let ctx = context(&seed(mode));
    let cache = tempfile::tempdir().unwrap();
    let repo = format!("{}/faults", proxy.address);
    let tf = workdir(mode, &build_config(ctx.path(), &repo), cache.path());
    tf.init().success();
    let applied = tf.apply();
    assert!(
        applied.succeeded(),
        "{applied}\n--- proxy ---\n{}",
        proxy.log()
    );
    let digest = tf.output("digest").as_str().unwrap().to_string();
    let platforms = tf.output("platform_digests");
    assert_registry_holds(&registry, "faults", &digest, &platforms);
    assert!(
        !tf.plan_has_changes(),
        "a plan through the proxy after the apply has changes"
    );
    let injected = proxy.injected();
    eprintln!("faults injected: {injected:?}");
    let log = proxy.log();
    // Each platform's manifest and the index under `latest` fail once; verify reads the
    // tag and both manifests.
    assert_eq!(injected.manifest_put_503, 3, "{injected:?}\n{log}");
    assert!(injected.manifest_read_503 >= 3, "{injected:?}\n{log}");
    assert!(
        injected.v2_429 + injected.blob_get_429 >= 1,
        "{injected:?}\n{log}"
    );
    assert_eq!(injected.cut_patch, 1, "{injected:?}\n{log}");
    assert_eq!(injected.cut_put, 1, "{injected:?}\n{log}");
    assert!(injected.slowed >= 1, "{injected:?}\n{log}");
    // Refused at least until the window closed: a retry that waits as told meets one.
    assert!(injected.window_429 >= 1, "{injected:?}\n{log}");
});

acc_test!(the_manifest_data_source_survives_503_and_429, |mode| {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).oci_index_with_attestation("read", "v1");
    let proxy = FaultProxy::start(&registry, Faults::all());
    let image = format!("{}/read:v1", proxy.address);
    let tf_config = format!(
        "{}data \"stevedore_image_manifest\" \"m\" {{\n  image    = {}\n  platform = \"linux/arm64\"\n}}\noutput \"digest\" {{\n  value = data.stevedore_image_manifest.m.digest\n}}\noutput \"platform_digest\" {{\n  value = data.stevedore_image_manifest.m.platform_digest\n}}\noutput \"architecture\" {{\n  value = data.stevedore_image_manifest.m.architecture\n}}\noutput \"attestation_count\" {{\n  value = data.stevedore_image_manifest.m.attestation_count\n}}\n",
        terraform_block(),
        quote(&image)
    );
    let cache = tempfile::tempdir().unwrap();
    let tf = workdir(mode, &tf_config, cache.path());
    tf.init().success();
    let applied = tf.apply();
    assert!(
        applied.succeeded(),
        "{applied}\n--- proxy ---\n{}",
        proxy.log()
    );
    assert_eq!(tf.output("digest"), pushed.digest.as_str());
    assert_eq!(
        tf.output("platform_digest"),
        pushed.platform_digest("linux/arm64")
    );
    assert_eq!(tf.output("architecture"), "arm64");
    assert_eq!(tf.output("attestation_count"), 1);
    let injected = proxy.injected();
    eprintln!("faults injected: {injected:?}");
    let log = proxy.log();
    assert!(injected.manifest_read_503 >= 2, "{injected:?}\n{log}");
    assert!(injected.blob_get_429 >= 1, "{injected:?}\n{log}");
});

// A refresh while every manifest read of the registry fails (503 each time, retries
// included) is not drift: plan and `apply -refresh-only` succeed with the "Image Not
// Refreshed" warning, plan nothing, and keep the state; once the registry answers again
// the plan is still empty.
acc_test!(
    refresh_on_a_registry_that_keeps_failing_keeps_the_state,
    |mode| {
        let registry = Registry::start();
        let proxy = FaultProxy::start(&registry, Faults::default());
        let ctx = tempfile::Builder::new()
            .prefix("stevedore-ctx")
            .tempdir()
            .unwrap();
        fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY app.txt /\n",
        )
        .unwrap();
        fs::write(ctx.path().join("app.txt"), seed(mode)).unwrap();
        let repo = format!("{}/app", proxy.address);
        let cache = tempfile::tempdir().unwrap();
        let tf = workdir(mode, &build_config(ctx.path(), &repo), cache.path());
        tf.init().success();
        tf.apply().success();
        let before = tf.resource_values("stevedore_image_build.app");

        proxy.set_manifest_reads_down(true);
        let plan = tf.run(&["plan", "-detailed-exitcode"]);
        assert_eq!(
            plan.code,
            Some(0),
            "a failing registry is no change\n{plan}"
        );
        assert_not_refreshed(&plan, &repo);
        assert!(proxy.injected().manifest_read_503 >= 1, "{}", proxy.log());
        let refreshed = tf.run(&["apply", "-refresh-only", "-auto-approve"]);
        assert_eq!(refreshed.code, Some(0), "{refreshed}");
        assert_not_refreshed(&refreshed, &repo);
        assert_eq!(tf.resource_values("stevedore_image_build.app"), before);

        proxy.set_manifest_reads_down(false);
        tf.assert_plans_empty();
        assert_eq!(tf.resource_values("stevedore_image_build.app"), before);
    }
);

/// The warning of a refresh that could not read the tags: it names the repository and the
/// registry's 503, and says the state is kept.
fn assert_not_refreshed(run: &acceptance_tests::Run, repository: &str) {
    let shown = flatten(&format!("{}{}", run.stdout, run.stderr));
    for said in [
        "Warning: Image Not Refreshed",
        repository,
        "503",
        "the state is kept as it was",
    ] {
        assert!(shown.contains(said), "no {said:?} in\n{run}");
    }
}
