//! The registries users really have: HTTPS with a certificate from a CA the user trusts
//! (`SSL_CERT_FILE`, Docker's `certs.d/<host>/ca.crt`), and the bearer-token protocol
//! (docker-registry with `auth: token` and a token service the tests run). Push, verify,
//! refresh and the data source through both; tokens cached per scope, a cross-repository
//! mount that asks for pull on its source, anonymous pull tokens, a wrong password refused
//! with the registry named, and no token in any log.
//!
//! The registry listens on 127.0.0.1 and speaks only TLS: the provider tries HTTPS first on
//! loopback too, and checks the certificate unless `insecure = true`.

use std::path::Path;
use std::sync::Arc;

use acceptance_tests::context::build_context;
use acceptance_tests::diagnostics::flatten;
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::registry::{Credentials, Options};
use acceptance_tests::tls::TestCa;
use acceptance_tests::token_server::TokenServer;
use acceptance_tests::{Mode, Pusher, Registry, Workdir};
use reqwest::Method;
use serde_json::Value;

use acceptance_tests::media_types::ACCEPT_ALL as ACCEPT;
const USER: &str = "deployer";
const PASSWORD: &str = "s3cret-pass";

fn ca() -> (tempfile::TempDir, Arc<TestCa>) {
    let dir = tempfile::Builder::new()
        .prefix("stevedore-ca")
        .tempdir()
        .unwrap();
    let ca = Arc::new(TestCa::new(dir.path()));
    (dir, ca)
}

fn credentials() -> Option<Credentials> {
    Some(Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
    })
}

fn context() -> tempfile::TempDir {
    build_context(&[
        ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", b"served over TLS\n"),
    ])
}

fn provider(address: &str, password: Option<&str>, extra: &str) -> String {
    let auth = match password {
        Some(p) => format!(
            "    username = {}\n    password = {}\n",
            quote(USER),
            quote(p)
        ),
        None => String::new(),
    };
    format!(
        "provider \"stevedore\" {{\n  registry_auth {{\n    address = {}\n{auth}{extra}  }}\n}}\n",
        quote(address)
    )
}

fn build(name: &str, ctx: &Path, repository: &str, extra: &str) -> String {
    format!(
        "resource \"stevedore_image_build\" \"{name}\" {{\n  context    = {}\n  repository = {}\n  tags       = [\"v1\"]\n{extra}}}\noutput \"{name}_digest\" {{\n  value = stevedore_image_build.{name}.digest\n}}\n",
        quote(&ctx.display().to_string()),
        quote(repository)
    )
}

fn data_source(image: &str) -> String {
    format!(
        "data \"stevedore_image_manifest\" \"m\" {{\n  image = {}\n}}\noutput \"read_digest\" {{\n  value = data.stevedore_image_manifest.m.digest\n}}\n",
        quote(image)
    )
}

/// The digest the registry serves for `name:reference`, read directly (not through the provider).
fn served_digest(registry: &Registry, name: &str, reference: &str) -> Option<String> {
    let answer = registry
        .request(Method::GET, &format!("/v2/{name}/manifests/{reference}"))
        .header("accept", ACCEPT)
        .send()
        .unwrap();
    if answer.status().as_u16() != 200 {
        return None;
    }
    Some(acceptance_tests::sha256_digest(&answer.bytes().unwrap()))
}

fn output(tf: &Workdir, name: &str) -> String {
    match tf.output(name) {
        Value::String(s) => s,
        other => panic!("output {name} is {other}"),
    }
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn https_registry_trusted_through_ssl_cert_file_pushes_verifies_refreshes_and_reads() {
    let (_ca_dir, ca) = ca();
    let registry = Registry::launch(Options {
        credentials: credentials(),
        tls: Some(ca.clone()),
        ..Options::default()
    });
    let ctx = context();
    let repo = format!("{}/web", registry.address);
    let main_tf = terraform_block()
        + &provider(&registry.address, Some(PASSWORD), "")
        + &build("app", ctx.path(), &repo, "")
        + &data_source(&format!("{repo}:v1"));
    let ca_file = ca.ca_file().display().to_string();
    let tf = Workdir::with_env(Mode::Installed, &main_tf, &[("SSL_CERT_FILE", &ca_file)]);
    tf.init().success();
    // The data source reads the tag the build pushes: it needs the build first.
    let first = tf.run(&[
        "apply",
        "-auto-approve",
        "-target=stevedore_image_build.app",
    ]);
    first.success();
    tf.apply().success();
    let digest = output(&tf, "app_digest");
    assert_eq!(
        served_digest(&registry, "web", "v1").as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        output(&tf, "read_digest"),
        digest,
        "the data source read it over HTTPS"
    );
    assert!(!tf.plan_has_changes(), "refresh over HTTPS found drift");
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn https_trust_comes_from_certs_d_or_insecure_and_an_unknown_ca_is_refused() {
    let (_ca_dir, ca) = ca();
    let registry = Registry::launch(Options {
        tls: Some(ca.clone()),
        ..Options::default()
    });
    let pushed = Pusher::new(&registry).docker_single("tools", "v3", "linux/amd64");
    let main_tf = |extra: &str| {
        terraform_block()
            + &provider(&registry.address, None, extra)
            + &data_source(&pushed.reference)
    };

    // Not trusted at all: refused, naming the registry and how to trust it; never plain HTTP.
    let untrusted = Workdir::new(Mode::Installed, &main_tf(""));
    untrusted.init().success();
    let said = flatten(&untrusted.run(&["plan"]).failure());
    assert!(said.contains(&registry.address), "{said}");
    assert!(
        said.contains("not trusted") && said.contains("certs.d"),
        "{said}"
    );

    // Docker's certs.d convention, under the rootless daemon's config dir.
    let xdg = tempfile::tempdir().unwrap();
    ca.certs_d(&xdg.path().join("docker/certs.d"), &registry.address);
    let xdg_path = xdg.path().display().to_string();
    let trusted = Workdir::with_env(
        Mode::Installed,
        &main_tf(""),
        &[("XDG_CONFIG_HOME", &xdg_path)],
    );
    trusted.init().success();
    trusted.apply().success();
    assert_eq!(output(&trusted, "read_digest"), pushed.digest);

    // `insecure = true` skips the check (and still speaks TLS: the registry has no plain port).
    let insecure = Workdir::new(Mode::Installed, &main_tf("    insecure = true\n"));
    insecure.init().success();
    insecure.apply().success();
    assert_eq!(output(&insecure, "read_digest"), pushed.digest);
}

/// An HTTPS registry with `auth: token`, its CA and its token service (one user).
fn token_registry(
    access_log: bool,
) -> (tempfile::TempDir, Arc<TestCa>, Arc<TokenServer>, Registry) {
    let (dir, ca) = ca();
    let token = Arc::new(TokenServer::start(&[(USER, PASSWORD)], 300));
    let registry = Registry::launch(Options {
        credentials: credentials(),
        tls: Some(ca.clone()),
        token: Some(token.clone()),
        access_log,
        ..Options::default()
    });
    (dir, ca, token, registry)
}

/// Token requests whose scopes are exactly `scopes` (in any order).
fn asked(token: &TokenServer, scopes: &[&str]) -> usize {
    let mut wanted: Vec<&str> = scopes.to_vec();
    wanted.sort();
    token
        .requests()
        .iter()
        .filter(|r| {
            let mut got: Vec<&str> = r.scopes.iter().map(String::as_str).collect();
            got.sort();
            got == wanted
        })
        .count()
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn token_registry_caches_tokens_mounts_across_repositories_and_keeps_tokens_out_of_logs() {
    let (_ca_dir, ca, token, registry) = token_registry(true);
    let ctx = context();
    let first = format!("{}/team/first", registry.address);
    let second = format!("{}/team/second", registry.address);
    let main_tf = terraform_block()
        + &provider(&registry.address, Some(PASSWORD), "")
        + &build("first", ctx.path(), &first, "")
        + &build(
            "second",
            ctx.path(),
            &second,
            "  keep_remotely = false\n  depends_on = [stevedore_image_build.first]\n",
        );
    let ca_file = ca.ca_file().display().to_string();
    // The provider's own pushes are under test, not the daemon's: with one
    // platform the daemon would send the layers and ask for its own tokens.
    let tf = Workdir::logged(
        Mode::Installed,
        &main_tf,
        &[
            ("SSL_CERT_FILE", &ca_file),
            ("STEVEDORE_PUSH_THROUGH_DAEMON", "0"),
        ],
    );
    tf.init().success();
    tf.apply().success();

    let digest = output(&tf, "first_digest");
    assert_eq!(
        output(&tf, "second_digest"),
        digest,
        "same context, same image"
    );
    assert_eq!(
        served_digest(&registry, "team/first", "v1").as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        served_digest(&registry, "team/second", "v1").as_deref(),
        Some(digest.as_str())
    );

    // One token per scope for the whole push, not one per request.
    assert_eq!(
        asked(&token, &["repository:team/first:pull,push"]),
        1,
        "{:#?}",
        token.requests()
    );
    // The second repository's layers were mounted from the first, which needs pull there.
    let mount_scopes = [
        "repository:team/second:pull,push",
        "repository:team/first:pull",
    ];
    assert_eq!(asked(&token, &mount_scopes), 1, "{:#?}", token.requests());
    let log = registry.access_log();
    let mounted = log
        .iter()
        .filter(|l| {
            l.contains("\"POST /v2/team/second/blobs/uploads/?")
                && l.contains("mount=")
                && l.contains("\" 201 ")
        })
        .count();
    // The config (a few hundred bytes) may be sent again; no layer may be.
    let manifest: Value = serde_json::from_slice(
        &registry
            .request(Method::GET, &format!("/v2/team/second/manifests/{digest}"))
            .header("accept", ACCEPT)
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    let config = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .replace(':', "%3A");
    let uploaded: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("/v2/team/second/blobs/uploads/"))
        .filter(|l| l.contains("\"PATCH ") || (l.contains("\"PUT ") && !l.contains(&config)))
        .collect();
    assert!(
        mounted >= 1,
        "no mount into team/second:\n{}",
        log.join("\n")
    );
    assert!(
        uploaded.is_empty(),
        "team/second re-uploaded layers: {uploaded:#?}"
    );
    assert!(token
        .requests()
        .iter()
        .all(|r| r.user.as_deref() == Some(USER)));

    // Refresh over bearer tokens finds no drift.
    assert!(!tf.plan_has_changes());

    // No token the service handed out, and not the password, is in any log.
    tf.assert_provider_logged("fetching a registry token");
    let all = tf.full_log();
    for issued in token.requests().iter().filter_map(|r| r.token.clone()) {
        let signature = issued.rsplit('.').next().unwrap();
        assert!(!all.contains(signature), "a token reached the logs");
    }
    assert!(!all.contains(PASSWORD), "the password reached the logs");

    // Destroy deletes what `second` pushed (with a token that allows `delete`), and only
    // there: `first` keeps the image (keep_remotely defaults to true).
    tf.destroy().success();
    assert_eq!(served_digest(&registry, "team/second", "v1"), None);
    assert!(token
        .requests()
        .iter()
        .any(|r| r.scopes == ["repository:team/second:delete,pull,push"]));
    assert_eq!(
        served_digest(&registry, "team/first", "v1").as_deref(),
        Some(digest.as_str())
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn token_registry_anonymous_pull_and_a_wrong_password_refused_with_the_registry_named() {
    let (_ca_dir, ca, token, registry) = token_registry(false);
    let public = Pusher::new(&registry).docker_single("public/base", "v1", "linux/amd64");
    let private = Pusher::new(&registry).docker_single("team/private", "v1", "linux/amd64");
    let ca_file = ca.ca_file().display().to_string();
    let env = [("SSL_CERT_FILE", ca_file.as_str())];

    // No credentials: the token service grants pull on public/… to anyone.
    let anonymous = Workdir::with_env(
        Mode::Installed,
        &(terraform_block() + &data_source(&public.reference)),
        &env,
    );
    anonymous.init().success();
    anonymous.apply().success();
    assert_eq!(output(&anonymous, "read_digest"), public.digest);
    assert!(token
        .requests()
        .iter()
        .any(|r| r.user.is_none() && r.status == 200));

    // ...and nothing else: a private repository is refused, not misreported as missing.
    let denied = Workdir::with_env(
        Mode::Installed,
        &(terraform_block() + &data_source(&private.reference)),
        &env,
    );
    denied.init().success();
    let said = flatten(&denied.run(&["plan"]).failure());
    assert!(said.contains(&registry.address), "{said}");
    assert!(said.contains("refused"), "{said}");
    assert!(!said.contains("was not found"), "{said}");

    // A wrong password: the token service says 401, and the diagnostic names the registry.
    let wrong = Workdir::with_env(
        Mode::Installed,
        &(terraform_block()
            + &provider(&registry.address, Some("not-the-password"), "")
            + &data_source(&private.reference)),
        &env,
    );
    wrong.init().success();
    let said = flatten(&wrong.run(&["plan"]).failure());
    assert!(said.contains(&registry.address), "{said}");
    assert!(said.contains("refused the credentials"), "{said}");
    assert!(token.requests().iter().any(|r| r.status == 401));
}
