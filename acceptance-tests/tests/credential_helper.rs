//! A docker credential helper used by an apply through terraform: `credHelpers` in the
//! docker config found through `DOCKER_CONFIG`, `docker-credential-<name>` found on the
//! PATH terraform was given, and an htpasswd registry that takes only what it answers.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use acceptance_tests::diagnostics::assert_error_contains;
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::{acc_test, sha256_digest, Mode, Registry, Workdir};
use tempfile::TempDir;

use acceptance_tests::media_types::ACCEPT_IMAGES as ACCEPT;
const HELPER: &str = "stevetest";
const USER: &str = "helper-user";
const SECRET: &str = "helper-pass-4471";

/// `bin/docker-credential-stevetest`, answering `get` for `address` only and appending
/// each call (`<verb> <server>`) to `calls.log`; and `docker/config.json` naming it.
fn helper_setup(address: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\nserver=$(cat)\necho \"$1 $server\" >> {log}\n\
         if [ \"$1\" = get ] && [ \"$server\" = {address} ]; then\n\
           printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{SECRET}\"}}' \"$server\"\n\
           exit 0\nfi\necho 'credentials not found in native keychain'\nexit 1\n",
        log = dir.path().join("calls.log").display(),
    );
    let program = bin.join(format!("docker-credential-{HELPER}"));
    fs::write(&program, script).unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    let docker = dir.path().join("docker");
    fs::create_dir(&docker).unwrap();
    let config = serde_json::json!({ "credHelpers": { address: HELPER } });
    fs::write(docker.join("config.json"), config.to_string()).unwrap();
    dir
}

/// Variables for terraform (and so the provider): `DOCKER_CONFIG`, and a PATH that
/// starts with the helper's directory when `with_helper`.
fn env(setup: &Path, with_helper: bool) -> Vec<(&'static str, String)> {
    let path = std::env::var("PATH").unwrap_or_default();
    let path = match with_helper {
        true => format!("{}:{path}", setup.join("bin").display()),
        false => path,
    };
    vec![
        ("DOCKER_CONFIG", setup.join("docker").display().to_string()),
        ("PATH", path),
    ]
}

fn config(ctx: &Path, repository: &str) -> String {
    format!(
        "{}resource \"stevedore_image_build\" \"app\" {{\n  context    = {}\n  repository = {}\n}}\noutput \"digest\" {{\n  value = stevedore_image_build.app.digest\n}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(repository)
    )
}

/// The digest of the manifest `reference` names, read from the registry with its password.
fn served_digest(registry: &Registry, name: &str, reference: &str) -> String {
    let url = format!("{}/v2/{name}/manifests/{reference}", registry.url());
    let resp = reqwest::blocking::Client::new()
        .get(&url)
        .header("accept", ACCEPT)
        .basic_auth(USER, Some(SECRET))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    sha256_digest(&resp.bytes().unwrap())
}

fn workdir(mode: Mode, tf: &str, env: &[(&'static str, String)]) -> Workdir {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = Workdir::with_env(mode, tf, &env);
    dir.init().success();
    dir
}

acc_test!(a_credential_helper_supplies_the_push_credentials, |mode| {
    let registry = Registry::with_auth(USER, SECRET);
    let setup = helper_setup(&registry.address);
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY app.txt /app.txt\n",
    )
    .unwrap();
    fs::write(ctx.path().join("app.txt"), format!("{mode:?} helper\n")).unwrap();
    let tf_config = config(ctx.path(), &format!("{}/web", registry.address));

    let tf = workdir(mode, &tf_config, &env(setup.path(), true));
    tf.apply().success();
    let digest = tf.output("digest").as_str().unwrap().to_string();
    assert_eq!(served_digest(&registry, "web", &digest), digest);
    assert_eq!(served_digest(&registry, "web", "latest"), digest);
    let calls = fs::read_to_string(setup.path().join("calls.log")).unwrap_or_default();
    assert!(
        calls
            .lines()
            .any(|l| l == format!("get {}", registry.address)),
        "the helper was not asked for {}: {calls:?}",
        registry.address
    );
    tf.assert_plans_empty();

    // Without the helper on PATH the apply fails saying which program is missing.
    let tf = workdir(mode, &tf_config, &env(setup.path(), false));
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, &format!("cannot run docker-credential-{HELPER}"));
    assert_error_contains(&stderr, "install it or remove it from the docker config");
    assert!(!stderr.contains(SECRET), "{stderr}");
});
