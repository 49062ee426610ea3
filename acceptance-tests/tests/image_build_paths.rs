//! `stevedore_image_build` paths a user meets that the main image_build tests do not:
//! the default keep_remotely, a registry that refuses DELETE, a Dockerfile elsewhere,
//! which changes plan a rebuild, what no_cache does, context_hash at plan time, and
//! credentials from `registry_auth` and from a docker config file used by an apply.

use std::fs;
use std::path::Path;

use acceptance_tests::context::build_context;
use acceptance_tests::hcl::{provider_block, quote, terraform_block};
use acceptance_tests::proof::{
    build_proof_program, image_layers_contain, proof_context, proof_line,
};
use acceptance_tests::{acc_test, Registry, Workdir};
use serde_json::Value;

use acceptance_tests::media_types::ACCEPT_ALL as ACCEPT;

fn context(dockerfile_at: &str) -> tempfile::TempDir {
    build_context(&[
        (dockerfile_at, b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", b"version 1\n"),
    ])
}

fn config(provider: &str, ctx: &Path, repo: &str, extra: &str) -> String {
    format!(
        "{}{provider}resource \"stevedore_image_build\" \"app\" {{\n  context    = {}\n  repository = {}\n{extra}}}\noutput \"digest\" {{\n  value = stevedore_image_build.app.digest\n}}\noutput \"context_hash\" {{\n  value = stevedore_image_build.app.context_hash\n}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(repo)
    )
}

/// `GET` of a manifest as the registry serves it to the credentials it wants.
fn get_manifest(registry: &Registry, name: &str, reference: &str) -> reqwest::blocking::Response {
    registry
        .request(
            reqwest::Method::GET,
            &format!("/v2/{name}/manifests/{reference}"),
        )
        .header("accept", ACCEPT)
        .send()
        .unwrap()
}

fn status(registry: &Registry, name: &str, reference: &str) -> u16 {
    get_manifest(registry, name, reference).status().as_u16()
}

/// Held shared by the tests that count on a step staying in the daemon's
/// build cache, and alone by the one that empties it (`docker builder prune`),
/// which would otherwise land between another test's two builds.
static BUILD_CACHE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The planned change of the one resource, from `plan -out` + `show -json`.
fn planned_change(tf: &Workdir) -> Value {
    let plan = tf.plan_json();
    plan["resource_changes"][0]["change"].clone()
}

acc_test!(default_keep_remotely_leaves_the_image_on_destroy, |mode| {
    let registry = Registry::start();
    let ctx = context("Dockerfile");
    let tf = Workdir::new(
        mode,
        &config("", ctx.path(), &format!("{}/web", registry.address), ""),
    );
    tf.init().success();
    tf.apply().success();
    let digest = tf.output("digest").as_str().unwrap().to_string();
    tf.destroy().success();
    assert_eq!(status(&registry, "web", &digest), 200);
    assert_eq!(status(&registry, "web", "latest"), 200);
});

acc_test!(a_registry_refusing_delete_gives_a_warning, |mode| {
    let registry = Registry::without_delete();
    let ctx = context("Dockerfile");
    let repo = format!("{}/web", registry.address);
    let tf = Workdir::new(
        mode,
        &config("", ctx.path(), &repo, "  keep_remotely = false\n"),
    );
    tf.init().success();
    tf.apply().success();
    let digest = tf.output("digest").as_str().unwrap().to_string();
    let run = tf.destroy();
    let shown = format!("{}{}", run.stdout, run.stderr);
    run.success();
    assert!(shown.contains("Image Left In Registry"), "{shown}");
    assert!(shown.contains("answered HTTP 405"), "{shown}");
    assert_eq!(status(&registry, "web", &digest), 200, "still there");
});

acc_test!(a_dockerfile_elsewhere_in_the_context_builds, |mode| {
    let registry = Registry::start();
    let ctx = context("build/Containerfile");
    let repo = format!("{}/web", registry.address);
    let extra = "  dockerfile = \"build/Containerfile\"\n";
    let tf = Workdir::new(mode, &config("", ctx.path(), &repo, extra));
    tf.init().success();
    tf.apply().success();
    let digest = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(status(&registry, "web", &digest), 200);
    tf.assert_plans_empty();
});

acc_test!(
    context_hash_is_known_at_plan_and_these_changes_rebuild,
    |mode| {
        let registry = Registry::start();
        let ctx = context("Dockerfile");
        fs::write(
            ctx.path().join("Other.Dockerfile"),
            "FROM scratch\nCOPY app.txt /other.txt\n",
        )
        .unwrap();
        let repo = format!("{}/web", registry.address);
        let tf = Workdir::new(mode, &config("", ctx.path(), &repo, ""));
        tf.init().success();
        let create = planned_change(&tf);
        let hash = create["after"]["context_hash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(hash.starts_with("sha256:"), "known at plan: {create:#}");
        assert_eq!(create["after_unknown"]["digest"], true);
        tf.apply().success();
        assert_eq!(
            tf.output("context_hash"),
            hash.as_str(),
            "the output is the planned hash"
        );
        for extra in [
            "  dockerfile = \"Other.Dockerfile\"\n",
            "  tags = [\"latest\", \"v2\"]\n",
            "  builder = \"classic\"\n",
            "  triggers = { release = \"2\" }\n",
        ] {
            tf.write_config(&config("", ctx.path(), &repo, extra));
            let change = planned_change(&tf);
            assert_eq!(change["actions"], serde_json::json!(["update"]), "{extra}");
            assert_eq!(
                change["after_unknown"]["digest"], true,
                "{extra} plans a rebuild"
            );
        }
    }
);

acc_test!(no_cache_runs_cached_steps_again, |mode| {
    let _cache = BUILD_CACHE.read().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::start();
    let ctx = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .unwrap();
    build_proof_program(ctx.path());
    // The daemon's build cache is shared by every test: a nonce keeps this
    // test's steps its own (the other mode runs the same test at the same time).
    let nonce = format!(
        "{mode:?} {} {:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    fs::write(ctx.path().join("nonce.txt"), nonce).unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\nRUN --mount=type=secret,id=v [\"/proof\", \"/run/secrets/v\", \"/v.txt\"]\n",
    )
    .unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("v");
    let repo = format!("{}/web", registry.address);
    let extra = |no_cache: bool, release: u32| {
        format!(
            "  secret_files = {{ v = {} }}\n  no_cache = {no_cache}\n  triggers = {{ release = \"{release}\" }}\n",
            quote(&file.display().to_string())
        )
    };
    let proof_in = |tf: &Workdir, value: &str| {
        let digest = tf.output("digest").as_str().unwrap().to_string();
        image_layers_contain(
            &registry,
            "web",
            &digest,
            proof_line(value.as_bytes()).as_bytes(),
        )
    };
    fs::write(&file, "first").unwrap();
    let tf = Workdir::new(mode, &config("", ctx.path(), &repo, &extra(false, 1)));
    tf.init().success();
    tf.apply().success();
    assert!(proof_in(&tf, "first"));
    // A rebuild with the cache reuses the RUN step, whatever the secret holds now...
    fs::write(&file, "second").unwrap();
    tf.write_config(&config("", ctx.path(), &repo, &extra(false, 2)));
    tf.apply().success();
    assert!(proof_in(&tf, "first"), "the cached step ran again");
    // ...and no_cache runs it again.
    tf.write_config(&config("", ctx.path(), &repo, &extra(true, 3)));
    tf.apply().success();
    assert!(proof_in(&tf, "second"), "no_cache did not run the step");
});

acc_test!(registry_auth_credentials_push_and_verify, |mode| {
    let registry = Registry::with_auth("ci", "s3cret-acc-5521");
    let ctx = context("Dockerfile");
    let repo = format!("{}/web", registry.address);
    let tf = Workdir::new(
        mode,
        &config(&provider_block(&registry, None), ctx.path(), &repo, ""),
    );
    tf.init().success();
    tf.apply().success();
    let digest = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(status(&registry, "web", &digest), 200);
    tf.assert_plans_empty();
    // A wrong password is refused naming the registry, never showing either password.
    tf.write_config(&config(
        &provider_block(&registry, Some("wrong-pass-7781")),
        ctx.path(),
        &repo,
        "  triggers = { r = \"2\" }\n",
    ));
    let stderr = tf.apply().failure();
    assert!(stderr.contains(&registry.address), "{stderr}");
    acceptance_tests::diagnostics::assert_error_contains(&stderr, "refused the credentials");
    assert!(!stderr.contains("wrong-pass-7781") && !stderr.contains("s3cret-acc-5521"));
});

acc_test!(docker_config_file_credentials_push, |mode| {
    use base64::Engine;
    let registry = Registry::with_auth("cfg", "from-docker-config-3310");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let auth = base64::engine::general_purpose::STANDARD.encode("cfg:from-docker-config-3310");
    fs::write(
        &cfg,
        serde_json::json!({ "auths": { registry.address.clone(): { "auth": auth } } }).to_string(),
    )
    .unwrap();
    let provider = format!(
        "provider \"stevedore\" {{\n  docker_config_file = {}\n}}\n",
        quote(&cfg.display().to_string())
    );
    let ctx = context("Dockerfile");
    let repo = format!("{}/web", registry.address);
    let tf = Workdir::new(mode, &config(&provider, ctx.path(), &repo, ""));
    tf.init().success();
    tf.apply().success();
    let digest = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(status(&registry, "web", &digest), 200);
});

acc_test!(build_log_file_holds_the_build_output, |mode| {
    let registry = Registry::start();
    let ctx = context("Dockerfile");
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("build.log");
    let repo = format!("{}/web", registry.address);
    let extra = format!(
        "  build_log_file = {}\n",
        quote(&file.display().to_string())
    );
    let tf = Workdir::new(mode, &config("", ctx.path(), &repo, &extra));
    tf.init().success();
    tf.apply().success();
    let log = fs::read_to_string(&file).unwrap();
    assert!(log.contains("COPY app.txt /app.txt"), "{log}");
    assert!(log.contains("pushed linux/amd64 manifest sha256:"), "{log}");
    // The file is no build input: moving it plans no rebuild.
    let moved = format!(
        "  build_log_file = {}\n",
        quote(&logs.path().join("other.log").display().to_string())
    );
    tf.write_config(&config("", ctx.path(), &repo, &moved));
    let change = planned_change(&tf);
    assert_eq!(change["after_unknown"]["digest"], Value::Null, "{change:#}");
});

/// The diff_ids of the image `tag` of repository `name` points at.
fn diff_ids(registry: &Registry, name: &str, tag: &str) -> Vec<String> {
    let http = reqwest::blocking::Client::new();
    let url = format!("{}/v2/{name}/manifests/{tag}", registry.url());
    let manifest: Value = serde_json::from_slice(
        &http
            .get(&url)
            .header("accept", ACCEPT)
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap();
    let url = format!("{}/v2/{name}/blobs/{config}", registry.url());
    let config: Value =
        serde_json::from_slice(&http.get(&url).send().unwrap().bytes().unwrap()).unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// The daemon forgets every build cache it has, then builds with `cache_from` the
/// image pushed with `cache_inline`: the slow RUN step comes from the registry.
/// One mode only: it prunes the daemon's build cache, which the other mode's run of
/// the same test would lose mid-build.
#[test]
#[ignore = "acceptance: run make testacc"]
fn cache_from_an_inline_cache_image_skips_the_slow_step() {
    let _alone = BUILD_CACHE.write().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::start();
    let ctx = tempfile::Builder::new()
        .prefix("stevedore-ctx")
        .tempdir()
        .unwrap();
    build_proof_program(ctx.path());
    let nonce = format!("{} {:?}", std::process::id(), std::time::SystemTime::now());
    fs::write(ctx.path().join("nonce.txt"), nonce).unwrap();
    fs::write(ctx.path().join("late.txt"), "one\n").unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\n\
         RUN [\"/proof\", \"/nonce.txt\", \"/slow.txt\", \"3\"]\nCOPY late.txt /late.txt\n",
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("build.log");
    let repo = format!("{}/web", registry.address);
    let cfg = |cache_from: &str| {
        let extra = format!(
            "  cache_inline = true\n  build_log_file = {}\n{cache_from}",
            quote(&log.display().to_string())
        );
        config("", ctx.path(), &repo, &extra)
    };
    let tf = Workdir::new(acceptance_tests::Mode::Installed, &cfg(""));
    tf.init().success();
    tf.apply().success();
    let first = diff_ids(&registry, "web", "latest");

    let pruned = std::process::Command::new("docker")
        .args(["builder", "prune", "-af"])
        .output()
        .unwrap();
    assert!(
        pruned.status.success(),
        "{}",
        String::from_utf8_lossy(&pruned.stderr)
    );
    fs::write(ctx.path().join("late.txt"), "two\n").unwrap();
    tf.write_config(&cfg(&format!("  cache_from = [\"{repo}:latest\"]\n")));
    tf.apply().success();
    let second = diff_ids(&registry, "web", "latest");
    let build_log = fs::read_to_string(&log).unwrap();
    assert_eq!(
        first[..3],
        second[..3],
        "the RUN layer was built again:\n{build_log}"
    );
    assert_ne!(first[3], second[3], "the late file changed");
    tf.assert_plans_empty();
}

/// The layers of a two-layer image, as the registry serves its manifest.
fn layer_digests(registry: &Registry, name: &str, reference: &str) -> Vec<String> {
    let served = get_manifest(registry, name, reference).bytes().unwrap();
    let manifest: Value = serde_json::from_slice(&served).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

// One platform in the Docker format: the daemon pushes the layers (logging in
// with the provider's credentials), stevedore reads its manifest back and tags
// that. After a one-file change only the new layer is sent; switched off, the
// image is streamed from the provider instead, and both ways end verified.
acc_test!(
    the_daemon_pushes_one_platform_and_stevedore_checks_it,
    |mode| {
        let registry = Registry::with_auth("dp", "daemon-push-7731");
        let ctx = build_context(&[
            (
                "Dockerfile",
                b"FROM scratch\nCOPY base.txt /base.txt\nCOPY app.txt /app.txt\n",
            ),
            ("app.txt", b"version 1\n"),
        ]);
        // The base layer is this test's own: no other build makes the same one.
        fs::write(
            ctx.path().join("base.txt"),
            ctx.path().display().to_string(),
        )
        .unwrap();
        let repo = format!("{}/web", registry.address);
        let main_tf = config(
            &provider_block(&registry, None),
            ctx.path(),
            &repo,
            "  tags = [\"latest\", \"v1\"]\n",
        );
        let tf = Workdir::logged(mode, &main_tf, &[]);
        tf.init().success();
        tf.apply().success();
        tf.assert_provider_logged("the daemon sent the layers, its manifest checked");
        let first = tf.output("digest").as_str().unwrap().to_string();
        let first_layers = layer_digests(&registry, "web", "v1");
        assert_eq!(first_layers.len(), 2);
        tf.assert_plans_empty();

        fs::write(ctx.path().join("app.txt"), "version 2\n").unwrap();
        tf.apply().success();
        tf.assert_provider_logged("0 layers compressed, 1 uploaded, 1 already there");
        let second = tf.output("digest").as_str().unwrap().to_string();
        assert_ne!(first, second);
        let second_layers = layer_digests(&registry, "web", "latest");
        assert_eq!(
            second_layers[0], first_layers[0],
            "the unchanged layer is reused"
        );
        assert_ne!(second_layers[1], first_layers[1]);
        assert_eq!(status(&registry, "web", &second), 200);
        tf.assert_plans_empty();

        // Switched off: the provider streams the image itself.
        let streamed = Workdir::logged(mode, &main_tf, &[("STEVEDORE_PUSH_THROUGH_DAEMON", "0")]);
        fs::write(ctx.path().join("app.txt"), "version 3\n").unwrap();
        streamed.init().success();
        streamed.apply().success();
        streamed.assert_provider_logged("streamed from the daemon");
        assert!(!streamed.full_log().contains("the daemon sent the layers"));
    }
);

// Ctrl-C while a `RUN` step of the build runs (a static program of ours sleeping two
// minutes): the apply ends within seconds, says it was interrupted, and nothing is left:
// no tag or blob in the registry, no image with this build's label in the daemon, nothing
// in the state.
acc_test!(
    ctrl_c_during_a_run_step_stops_the_build_and_tags_nothing,
    |mode| {
        let registry = Registry::start();
        let ctx = proof_context(
            "FROM scratch\nCOPY nonce.txt /nonce.txt\nCOPY proof /proof\n\
             RUN [\"/proof\", \"/proof\", \"/out.txt\", \"120\"]\n",
        );
        let logs = tempfile::tempdir().unwrap();
        let build_log = logs.path().join("build.log");
        let label = ctx.path().display().to_string();
        let extra = format!(
            "  build_log_file = {}\n  labels = {{ \"org.stevedore.test.cancel\" = {} }}\n",
            quote(&build_log.display().to_string()),
            quote(&label)
        );
        let repo = format!("{}/web", registry.address);
        let tf = Workdir::new(mode, &config("", ctx.path(), &repo, &extra));
        tf.init().success();

        let apply = tf.spawn(&["apply", "-auto-approve"]).wait_for_file(
            &build_log,
            "RUN [\"/proof\"",
            std::time::Duration::from_secs(150),
            "the RUN step never started",
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        let interrupted = std::time::Instant::now();
        apply.interrupt();
        let run = apply.wait();
        let took = interrupted.elapsed();
        assert!(
            took < std::time::Duration::from_secs(30),
            "the apply took {took:?} to stop (the step sleeps 120 s)\n{run}"
        );
        let stderr = run.failure();
        assert!(stderr.to_lowercase().contains("interrupted"), "{stderr}");
        assert_eq!(status(&registry, "web", "latest"), 404, "a tag was pushed");
        assert_eq!(registry.blob_bytes(), 0, "blobs were pushed");
        assert_eq!(
            acceptance_tests::daemon_images_labelled(&format!("org.stevedore.test.cancel={label}")),
            Vec::<String>::new(),
            "an image was left"
        );
        assert_eq!(tf.resource_values("stevedore_image_build.app"), Value::Null);
    }
);
