//! `resource "stevedore_image_build"` through the real terraform CLI, the real Docker
//! daemon (classic builder, `FROM scratch` + `COPY` only: nothing is pulled) and a real
//! docker-registry. What the registry holds is read back with this test's own HTTP
//! client, never the provider's.

use acceptance_tests::listening::ClosedPort;
use std::fs;
use std::path::Path;

use acceptance_tests::context::build_context;
use acceptance_tests::diagnostics::{assert_error_contains, assert_error_names_attribute};
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::proof::{build_proof_program, image_layers_contain, proof_line};
use acceptance_tests::push::Uploader;
use acceptance_tests::registry::Options;
use acceptance_tests::{
    acc_test, daemon_images_labelled, sha256_digest, Mode, Pusher, Registry, Workdir,
};
use serde_json::Value;

use acceptance_tests::media_types::ACCEPT_ALL as ACCEPT;
use acceptance_tests::media_types::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};

/// A build context: a scratch Dockerfile copying `app.txt`, plus a `.dockerignore`d file.
fn context() -> tempfile::TempDir {
    build_context(&[
        ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", b"version 1\n"),
        (".dockerignore", b"notes.md\n"),
        ("notes.md", b"ignored\n"),
    ])
}

/// A config building `context` into `repository` with `extra` attribute lines, and every
/// computed attribute as an output.
fn config(context: &Path, repository: &str, extra: &str) -> String {
    let mut tf = terraform_block();
    tf += &format!(
        "resource \"stevedore_image_build\" \"app\" {{\n  context    = {}\n  repository = {}\n{extra}}}\n",
        quote(&context.display().to_string()),
        quote(repository)
    );
    for name in [
        "digest",
        "image_uri",
        "platform_digests",
        "manifest_media_type",
        "image_id",
        "context_hash",
    ] {
        tf += &format!("output \"{name}\" {{\n  value = stevedore_image_build.app.{name}\n}}\n");
    }
    tf
}

/// GET with every manifest type accepted; returns (content type, body, digest of body).
fn get_manifest(registry: &Registry, name: &str, reference: &str) -> (String, Value, String) {
    let url = format!("{}/v2/{name}/manifests/{reference}", registry.url());
    let resp = reqwest::blocking::Client::new()
        .get(&url)
        .header("accept", ACCEPT)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let bytes = resp.bytes().unwrap();
    (
        ct,
        serde_json::from_slice(&bytes).unwrap(),
        sha256_digest(&bytes),
    )
}

fn get_config(registry: &Registry, name: &str, manifest: &Value) -> Value {
    let digest = manifest["config"]["digest"].as_str().unwrap();
    let url = format!("{}/v2/{name}/blobs/{digest}", registry.url());
    let bytes = reqwest::blocking::get(&url).unwrap().bytes().unwrap();
    assert_eq!(sha256_digest(&bytes), digest);
    serde_json::from_slice(&bytes).unwrap()
}

fn applied(mode: Mode, tf_config: &str) -> Workdir {
    let tf = Workdir::new(mode, tf_config);
    tf.init().success();
    tf.apply().success();
    tf
}

acc_test!(one_platform_docker_manifest, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let tf = applied(
        mode,
        &config(ctx.path(), &repo, "  tags = [\"latest\", \"v1\"]\n"),
    );
    let digest = tf.output("digest").as_str().unwrap().to_string();
    for tag in ["latest", "v1"] {
        let (ct, manifest, served) = get_manifest(&registry, "web", tag);
        assert_eq!(ct, DOCKER_MANIFEST);
        assert_eq!(manifest["mediaType"], DOCKER_MANIFEST);
        assert!(
            manifest.get("manifests").is_none(),
            "a single manifest, no index"
        );
        assert_eq!(served, digest, "tag {tag}");
        let config = get_config(&registry, "web", &manifest);
        assert_eq!(
            (config["os"].as_str(), config["architecture"].as_str()),
            (Some("linux"), Some("amd64"))
        );
        assert_eq!(
            tf.output("image_id")["linux/amd64"],
            manifest["config"]["digest"]
        );
    }
    assert_eq!(tf.output("image_uri"), format!("{repo}@{digest}").as_str());
    assert_eq!(tf.output("manifest_media_type"), DOCKER_MANIFEST);
    assert_eq!(
        tf.output("platform_digests")["linux/amd64"],
        digest.as_str()
    );
    tf.assert_plans_empty();
});

acc_test!(two_platforms_oci_index, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/multi", registry.address);
    let extra = "  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  manifest_format = \"oci\"\n";
    let tf = applied(mode, &config(ctx.path(), &repo, extra));
    let (ct, index, served) = get_manifest(&registry, "multi", "latest");
    assert_eq!(ct, OCI_INDEX);
    assert_eq!(served, tf.output("digest").as_str().unwrap());
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "exactly the two platforms, no attestation: {index}"
    );
    for (entry, arch) in entries.iter().zip(["amd64", "arm64"]) {
        assert_eq!(entry["platform"]["architecture"], arch);
        assert!(entry.get("annotations").is_none(), "{entry}");
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(
            tf.output("platform_digests")[format!("linux/{arch}")],
            digest
        );
        let (ct, manifest, _) = get_manifest(&registry, "multi", digest);
        assert_eq!(ct, OCI_MANIFEST);
        let config = get_config(&registry, "multi", &manifest);
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
    }
    tf.assert_plans_empty();
});

acc_test!(ignored_file_plans_nothing_real_file_rebuilds, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let tf = applied(mode, &config(ctx.path(), &repo, ""));
    let first = tf.output("digest");
    fs::write(ctx.path().join("notes.md"), "changed, but ignored\n").unwrap();
    tf.assert_plans_empty();
    fs::write(ctx.path().join("app.txt"), "version 2\n").unwrap();
    assert!(tf.plan_has_changes(), "a changed file must plan an update");
    tf.apply().success();
    let second = tf.output("digest");
    assert_ne!(first, second);
    assert_eq!(
        get_manifest(&registry, "web", "latest").2,
        second.as_str().unwrap()
    );
    tf.assert_plans_empty();
});

acc_test!(tag_moved_by_someone_else_is_drift, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let tf = applied(mode, &config(ctx.path(), &repo, ""));
    let ours = tf.output("digest").as_str().unwrap().to_string();
    let theirs = Pusher::new(&registry).docker_single("web", "latest", "linux/amd64");
    assert_ne!(theirs.digest, ours);
    assert!(tf.plan_has_changes(), "a moved tag must plan a rebuild");
    tf.apply().success();
    // The local build tags are removed after each publish, so the rebuild may not hit the
    // daemon's cache and can get a new digest; what matters is that the tag is ours again.
    let restored = tf.output("digest").as_str().unwrap().to_string();
    assert_ne!(restored, theirs.digest);
    assert_eq!(get_manifest(&registry, "web", "latest").2, restored);
    tf.assert_plans_empty();
});

acc_test!(missing_tag_is_drift, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let tf = applied(mode, &config(ctx.path(), &repo, ""));
    let ours = tf.output("digest").as_str().unwrap().to_string();
    let url = format!("{}/v2/web/manifests/{ours}", registry.url());
    let status = reqwest::blocking::Client::new()
        .delete(&url)
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 202);
    assert!(tf.plan_has_changes(), "a missing tag must plan a rebuild");
    tf.apply().success();
    let restored = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(get_manifest(&registry, "web", "latest").2, restored);
    tf.assert_plans_empty();
});

/// Init, then a plan that must fail naming `attribute`; returns stderr.
fn plan_fails_at(mode: Mode, tf_config: &str, attribute: &str) -> String {
    let tf = Workdir::new(mode, tf_config);
    tf.init().success();
    let stderr = tf.plan().failure();
    assert_error_names_attribute(&stderr, attribute);
    stderr
}

acc_test!(bad_inputs_are_attributed_at_plan, |mode| {
    let ctx = context();
    let repo = "127.0.0.1:5000/web";
    let missing = ctx.path().join("nope");
    let stderr = plan_fails_at(mode, &config(&missing, repo, ""), "context");
    assert_error_contains(&stderr, "does not exist or is not a directory");

    let stderr = plan_fails_at(
        mode,
        &config(ctx.path(), repo, "  dockerfile = \"../Dockerfile\"\n"),
        "dockerfile",
    );
    assert_error_contains(&stderr, "outside the build context");

    let stderr = plan_fails_at(
        mode,
        &config(ctx.path(), repo, "  platforms = [\"linux/amd46\"]\n"),
        "platforms",
    );
    assert_error_contains(&stderr, "unknown architecture \"amd46\"");

    let stderr = plan_fails_at(
        mode,
        &config(ctx.path(), "127.0.0.1:5000/web:v1", ""),
        "repository",
    );
    assert_error_contains(&stderr, "a repository without one is expected");
});

acc_test!(registry_down_at_apply_fails_cleanly, |mode| {
    let ctx = context();
    let closed = ClosedPort::new();
    let repo = format!("{}/web", closed.address());
    let tf = Workdir::new(mode, &config(ctx.path(), &repo, ""));
    tf.init().success();
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, "Image Push Failed");
    assert_error_contains(&stderr, "is unreachable");
    let state = tf.state_json();
    assert!(
        state["values"].is_null() || state["values"]["root_module"]["resources"].is_null(),
        "no half-made resource in state: {state}"
    );
});

/// The status of `GET /v2/<name>/manifests/<reference>` with every type accepted.
fn manifest_status(registry: &Registry, name: &str, reference: &str) -> u16 {
    let url = format!("{}/v2/{name}/manifests/{reference}", registry.url());
    reqwest::blocking::Client::new()
        .get(&url)
        .header("accept", ACCEPT)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Tags manifest `digest` of `name` as `tag` too, as another pipeline would.
fn retag(registry: &Registry, name: &str, digest: &str, tag: &str) {
    let url = format!("{}/v2/{name}/manifests/{digest}", registry.url());
    let resp = reqwest::blocking::Client::new()
        .get(&url)
        .header("accept", ACCEPT)
        .send()
        .unwrap();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let raw = resp.bytes().unwrap();
    assert_eq!(sha256_digest(&raw), digest);
    Uploader::new(registry).manifest(name, tag, &ct, &raw);
}

acc_test!(destroy_with_keep_remotely_false_deletes, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let tf = applied(
        mode,
        &config(ctx.path(), &repo, "  keep_remotely = false\n"),
    );
    let digest = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(manifest_status(&registry, "web", &digest), 200);
    tf.destroy().success();
    assert_eq!(manifest_status(&registry, "web", &digest), 404);
    assert_eq!(manifest_status(&registry, "web", "latest"), 404);
});

// Regression: refresh wrote the digest of someone else's push into `digest`, and destroy
// deleted it, taking every tag naming it along.
acc_test!(destroy_after_drift_deletes_only_what_it_pushed, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let two = "  keep_remotely = false\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n";
    let tf = applied(mode, &config(ctx.path(), &repo, two));
    let ours = tf.output("digest").as_str().unwrap().to_string();
    let platform_digests = tf.output("platform_digests");
    let theirs = Pusher::new(&registry).docker_single("web", "latest", "linux/amd64");
    retag(&registry, "web", &theirs.digest, "theirs-release");
    tf.run(&["refresh"]).success();
    let state = tf.state_json();
    assert_eq!(
        state["values"]["root_module"]["resources"][0]["values"]["digest"],
        theirs.digest.as_str(),
        "refresh saw the moved tag (ours: {ours}): {state:#}"
    );

    tf.destroy().success();
    assert_eq!(
        manifest_status(&registry, "web", &theirs.digest),
        200,
        "their image survives"
    );
    assert_eq!(get_manifest(&registry, "web", "latest").2, theirs.digest);
    assert_eq!(
        get_manifest(&registry, "web", "theirs-release").2,
        theirs.digest
    );
    assert_eq!(
        manifest_status(&registry, "web", &ours),
        404,
        "our index is deleted"
    );
    let platform_digests = platform_digests.as_object().unwrap();
    assert_eq!(platform_digests.len(), 2, "{platform_digests:?}");
    for (platform, digest) in platform_digests {
        let digest = digest.as_str().unwrap();
        assert_eq!(manifest_status(&registry, "web", digest), 404, "{platform}");
    }
});

acc_test!(destroy_leaves_what_another_tag_names_and_warns, |mode| {
    let registry = Registry::start();
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let tf = applied(
        mode,
        &config(ctx.path(), &repo, "  keep_remotely = false\n"),
    );
    let ours = tf.output("digest").as_str().unwrap().to_string();
    retag(&registry, "web", &ours, "release-7");
    let run = tf.destroy();
    let stdout = run.stdout.clone();
    let stderr = run.stderr.clone();
    run.success();
    let shown = format!("{stdout}{stderr}");
    assert!(shown.contains("Image Partly Left In Registry"), "{shown}");
    assert!(shown.contains("release-7"), "{shown}");
    assert_eq!(get_manifest(&registry, "web", "release-7").2, ours);
    assert_eq!(
        tf.state_json()["values"],
        Value::Null,
        "destroyed: {}",
        tf.state_json()
    );
});

acc_test!(
    build_failure_names_the_step_and_keeps_the_prior_image,
    |mode| {
        let registry = Registry::start();
        let ctx = context();
        let repo = format!("{}/web", registry.address);
        let tf = applied(mode, &config(ctx.path(), &repo, ""));
        let before = tf.output("digest");
        // The other mode's test runs the same build at the same time: without content of
        // its own (a nonce) BuildKit merges the two, and reports the merged steps to one.
        fs::write(
            ctx.path().join("nonce.txt"),
            ctx.path().display().to_string(),
        )
        .unwrap();
        fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY app.txt /app.txt\n\
             COPY missing.txt /missing.txt\n",
        )
        .unwrap();
        let stderr = tf.apply().failure();
        assert_error_contains(&stderr, "Image Build Failed");
        // BuildKit (what `auto` picks on this daemon) names steps as [n/m].
        assert_error_contains(&stderr, "[3/3] COPY missing.txt /missing.txt");
        assert_error_contains(&stderr, "Last lines of the build log:");
        assert_error_contains(&stderr, "The tags in");
        assert_eq!(
            tf.output("digest"),
            before,
            "the state keeps the previous image"
        );
        assert_eq!(
            get_manifest(&registry, "web", "latest").2,
            before.as_str().unwrap()
        );
        assert!(tf.plan_has_changes(), "the failed update is still planned");
    }
);

/// A context whose `RUN` step writes the proof of secret `npm` into the image (see
/// [`acceptance_tests::proof`]), after sleeping `sleep` seconds.
fn secret_context(sleep: u32) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .unwrap();
    build_proof_program(dir.path());
    fs::remove_file(dir.path().join("proof.c")).unwrap();
    // The daemon's BuildKit is shared by every test and provider process, and
    // merges identical steps across them: a nonce keeps this context's own.
    fs::write(
        dir.path().join("nonce.txt"),
        dir.path().display().to_string(),
    )
    .unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\n\
             RUN --mount=type=secret,id=npm [\"/proof\", \"/run/secrets/npm\", \"/proof.txt\", \"{sleep}\"]\n"
        ),
    )
    .unwrap();
    dir
}

acc_test!(secrets_are_never_shown, |mode| {
    const SECRET: &str = "s3cr3t-value-xyz";
    let registry = Registry::start();
    let ctx = secret_context(0);
    let repo = format!("{}/web", registry.address);
    // The daemon here has BuildKit, so `auto` builds with the secret mounted.
    let extra = format!("  secrets = {{ npm = \"{SECRET}\" }}\n  no_cache = true\n");
    let tf = Workdir::logged(mode, &config(ctx.path(), &repo, &extra), &[]);
    tf.init().success();
    let plan = tf.plan().success();
    assert!(!plan.contains(SECRET), "{plan}");
    let applied = tf.apply().success();
    assert!(!applied.contains(SECRET), "{applied}");
    // The RUN step saw the value: its proof is in the pushed image.
    let digest = tf.output("digest").as_str().unwrap().to_string();
    let proof = proof_line(SECRET.as_bytes());
    assert!(
        image_layers_contain(&registry, "web", &digest, proof.as_bytes()),
        "RUN did not see the secret (no {proof:?} in the image)"
    );
    assert!(!image_layers_contain(
        &registry,
        "web",
        &digest,
        SECRET.as_bytes()
    ));
    // The log is at trace and holds the build's own progress, down to the
    // step that mounted the secret, yet not the value.
    tf.assert_provider_logged("RUN --mount=type=secret,id=npm");
    assert!(!tf.full_log().contains(SECRET), "the secret is in the log");
    // The classic builder cannot mount secrets: a clear error, still without the value.
    let classic = format!("{extra}  builder = \"classic\"\n");
    tf.write_config(&config(ctx.path(), &repo, &classic));
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, "secrets (npm) need BuildKit secret mounts");
    assert!(!stderr.contains(SECRET), "{stderr}");
    assert!(!tf.full_log().contains(SECRET), "the secret is in the log");
});

// Regression: under Terraform's default parallelism, two builds of the same Dockerfile with
// different values for one secret id both saw the first build's value.
acc_test!(concurrent_builds_each_see_their_own_secret, |mode| {
    let registry = Registry::start();
    let ctx = secret_context(2);
    let mut tf_config = terraform_block();
    for (name, value) in [("a", "value-of-a-1f2e"), ("b", "value-of-b-9c8d")] {
        tf_config += &format!(
            "resource \"stevedore_image_build\" \"{name}\" {{\n  context    = {}\n  repository = \"{}/{name}\"\n  no_cache   = true\n  secrets    = {{ npm = \"{value}\" }}\n}}\noutput \"{name}\" {{\n  value = stevedore_image_build.{name}.digest\n}}\n",
            quote(&ctx.path().display().to_string()),
            registry.address,
        );
    }
    let tf = applied(mode, &tf_config);
    for (name, value) in [("a", "value-of-a-1f2e"), ("b", "value-of-b-9c8d")] {
        let digest = tf.output(name).as_str().unwrap().to_string();
        let proof = proof_line(value.as_bytes());
        assert!(
            image_layers_contain(&registry, name, &digest, proof.as_bytes()),
            "build {name} did not see its own secret (no {proof:?} in its image)"
        );
    }
    tf.assert_plans_empty();
});

acc_test!(secret_env_and_secret_files_never_enter_terraform, |mode| {
    const FROM_ENV: &str = "env-secret-5d1c";
    const FROM_FILE: &str = "file-secret-a07e";
    let registry = Registry::start();
    let ctx = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .unwrap();
    build_proof_program(ctx.path());
    // Without a step of its own, BuildKit merges this build with the other
    // mode's identical one, and only one of them reports the merged steps.
    fs::write(
        ctx.path().join("nonce.txt"),
        ctx.path().display().to_string(),
    )
    .unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\n\
         RUN --mount=type=secret,id=npm [\"/proof\", \"/run/secrets/npm\", \"/npm.txt\"]\n\
         RUN --mount=type=secret,id=pip [\"/proof\", \"/run/secrets/pip\", \"/pip.txt\"]\n",
    )
    .unwrap();
    let secrets_dir = tempfile::tempdir().unwrap();
    let file = secrets_dir.path().join("pip.tok");
    fs::write(&file, FROM_FILE).unwrap();
    let repo = format!("{}/web", registry.address);
    let extra = format!(
        "  no_cache     = true\n  secret_env   = {{ npm = \"STEVEDORE_ACC_NPM_TOKEN\" }}\n  secret_files = {{ pip = {} }}\n",
        quote(&file.display().to_string())
    );
    let tf = Workdir::logged(
        mode,
        &config(ctx.path(), &repo, &extra),
        &[("STEVEDORE_ACC_NPM_TOKEN", FROM_ENV)],
    );
    tf.init().success();
    let applied = tf.apply().success();
    let digest = tf.output("digest").as_str().unwrap().to_string();
    for (what, value) in [("env", FROM_ENV), ("file", FROM_FILE)] {
        let proof = proof_line(value.as_bytes());
        assert!(
            image_layers_contain(&registry, "web", &digest, proof.as_bytes()),
            "the RUN step did not see the {what} secret"
        );
    }
    tf.assert_provider_logged("RUN --mount=type=secret,id=npm");
    let state = fs::read_to_string(tf.path.join("terraform.tfstate")).unwrap();
    for value in [FROM_ENV, FROM_FILE] {
        assert!(!state.contains(value), "a secret value is in the state");
        assert!(!applied.contains(value));
        assert!(
            !tf.full_log().contains(value),
            "a secret value is in the log"
        );
    }
    // A new value in the file alone plans nothing.
    fs::write(&file, "rotated-value").unwrap();
    tf.assert_plans_empty();
});

/// The requests that change a registry (uploads, manifests, deletes) in its access log.
fn writes(registry: &Registry) -> Vec<String> {
    registry
        .access_log()
        .into_iter()
        .filter(|l| {
            ["\"PUT ", "\"POST ", "\"PATCH ", "\"DELETE "]
                .iter()
                .any(|m| l.contains(m))
        })
        .collect()
}

// Planning only reads: a create and an update are planned with no build (no image with
// this test's label appears in the daemon) and no write to the registry.
acc_test!(planning_never_builds_or_pushes, |mode| {
    let registry = Registry::launch(Options {
        access_log: true,
        ..Options::default()
    });
    let ctx = context();
    // A label of this test's own: both modes run at once on the same daemon.
    let label = format!("org.stevedore.test.plan={}", ctx.path().display());
    let (key, value) = label.split_once('=').unwrap();
    let extra = format!("  labels = {{ {} = {} }}\n", quote(key), quote(value));
    let repo = format!("{}/web", registry.address);
    let tf = Workdir::new(mode, &config(ctx.path(), &repo, &extra));
    tf.init().success();

    assert!(tf.plan_has_changes(), "the create is planned");
    assert_eq!(
        writes(&registry),
        Vec::<String>::new(),
        "planning a create wrote"
    );
    assert_eq!(registry.blob_bytes(), 0);
    assert_eq!(
        daemon_images_labelled(&label),
        Vec::<String>::new(),
        "planning a create built"
    );

    tf.apply().success();
    let written = writes(&registry);
    assert!(!written.is_empty(), "the apply pushed nothing");
    let bytes = registry.blob_bytes();
    let images = daemon_images_labelled(&label);

    fs::write(ctx.path().join("app.txt"), "version 2\n").unwrap();
    assert!(tf.plan_has_changes(), "the changed context plans a rebuild");
    assert_eq!(writes(&registry), written, "planning an update wrote");
    assert_eq!(registry.blob_bytes(), bytes);
    assert_eq!(
        daemon_images_labelled(&label),
        images,
        "planning an update built"
    );
});

// `build_args`, `labels` and `target` written in HCL reach the build: the stage built is the
// one `target` names (not the last), the argument picks the file that stage copies, and the
// label is in the pushed image's config.
acc_test!(build_args_labels_and_target_reach_the_build, |mode| {
    let registry = Registry::start();
    let ctx = build_context(&[
        (
            "Dockerfile",
            b"FROM scratch AS chosen\nARG PICK=default.txt\nCOPY ${PICK} /picked.txt\n\
              FROM scratch AS last\nCOPY last.txt /last.txt\n",
        ),
        ("default.txt", b"default-choice-41d2\n"),
        ("wanted.txt", b"wanted-choice-93ab\n"),
        ("last.txt", b"last-stage-7c05\n"),
    ]);
    let repo = format!("{}/web", registry.address);
    let extra = "  target     = \"chosen\"\n  build_args = { PICK = \"wanted.txt\" }\n  \
                 labels     = { \"org.example.from-hcl\" = \"yes\" }\n";
    let tf = applied(mode, &config(ctx.path(), &repo, extra));
    let digest = tf.output("digest").as_str().unwrap().to_string();
    let (_, manifest, _) = get_manifest(&registry, "web", &digest);
    let config = get_config(&registry, "web", &manifest);
    assert_eq!(
        config["config"]["Labels"]["org.example.from-hcl"], "yes",
        "{config}"
    );
    assert!(image_layers_contain(
        &registry,
        "web",
        &digest,
        b"wanted-choice-93ab"
    ));
    assert!(!image_layers_contain(
        &registry,
        "web",
        &digest,
        b"default-choice-41d2"
    ));
    assert!(!image_layers_contain(
        &registry,
        "web",
        &digest,
        b"last-stage-7c05"
    ));
    tf.assert_plans_empty();
});
