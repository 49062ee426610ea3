//! Daemons on other machines, reached as the docker CLI reaches them:
//! `tcp://` with TLS and a client certificate (stunnel requiring one, in front of this
//! machine's daemon), `ssh://` through the system ssh and the user's ssh config (a private
//! sshd on loopback; the far side runs the real `docker system dial-stdio`), and the docker
//! CLI's current context (made with `docker context create` and `docker context use`).
//! A wrong CA, a missing client certificate, a cert path that is not there, a plain client
//! on the TLS port and an ssh login refused each fail with the daemon named and the reason,
//! never a crash.

use std::fs;
use std::path::Path;
use std::process::Command;

use acceptance_tests::context::build_context;
use acceptance_tests::daemon_access::{with_passwd, Sshd, Stunnel};
use acceptance_tests::diagnostics::flatten;
use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::tls::TestCa;
use acceptance_tests::{Mode, Registry, Run, Workdir};
use reqwest::Method;
use serde_json::Value;

use acceptance_tests::media_types::ACCEPT_ALL as ACCEPT;

fn context(marker: &str) -> tempfile::TempDir {
    let app = format!("built through {marker}\n");
    build_context(&[
        ("Dockerfile", b"FROM scratch\nCOPY app.txt /app.txt\n"),
        ("app.txt", app.as_bytes()),
    ])
}

fn config(registry: &Registry, provider_extra: &str, ctx: &Path) -> String {
    format!(
        "{}provider \"stevedore\" {{\n{provider_extra}}}\nresource \"stevedore_image_build\" \"app\" {{\n  context    = {}\n  repository = {}\n  tags       = [\"v1\"]\n}}\noutput \"digest\" {{\n  value = stevedore_image_build.app.digest\n}}\n",
        terraform_block(),
        quote(&ctx.display().to_string()),
        quote(&format!("{}/remote", registry.address))
    )
}

fn served_digest(registry: &Registry) -> Option<String> {
    let answer = registry
        .request(Method::GET, "/v2/remote/manifests/v1")
        .header("accept", ACCEPT)
        .send()
        .unwrap();
    (answer.status().as_u16() == 200)
        .then(|| acceptance_tests::sha256_digest(&answer.bytes().unwrap()))
}

/// Applies, checks the tag the registry serves is the digest in state, and that a second
/// plan is empty.
fn applies_and_pushes(tf: &Workdir, registry: &Registry) {
    tf.init().success();
    tf.apply().success();
    let digest = match tf.output("digest") {
        Value::String(s) => s,
        other => panic!("digest output is {other}"),
    };
    assert_eq!(served_digest(registry).as_deref(), Some(digest.as_str()));
    assert!(!tf.plan_has_changes(), "a plan after the apply has changes");
}

/// A failed apply: no crash, and the text names every one of `needles`.
fn fails_saying(run: Run, needles: &[&str]) -> String {
    assert!(run.crash_marker().is_none(), "the provider crashed");
    let said = flatten(&run.failure());
    eprintln!("diagnostic: {said}");
    for n in needles {
        assert!(said.contains(n), "expected {n:?} in: {said}");
    }
    said
}

fn ca() -> (tempfile::TempDir, TestCa) {
    let dir = tempfile::Builder::new()
        .prefix("stevedore-ca")
        .tempdir()
        .unwrap();
    let ca = TestCa::new(dir.path());
    (dir, ca)
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_tls_daemon_that_requires_a_client_certificate_builds_and_pushes() {
    let (ca_dir, ca) = ca();
    let stunnel = Stunnel::start(&ca);
    let registry = Registry::start();
    let client = ca.client("builder");
    let certs = ca.docker_cert_dir(&ca_dir.path().join("docker-certs"), Some(&client));
    let ctx = context("tls");
    let provider = format!(
        "  docker_host      = \"tcp://127.0.0.1:{}\"\n  docker_cert_path = {}\n",
        stunnel.port,
        quote(&certs.display().to_string())
    );
    let tf = Workdir::new(Mode::Installed, &config(&registry, &provider, ctx.path()));
    applies_and_pushes(&tf, &registry);
    assert!(
        stunnel.log().contains("accepted connection"),
        "the build did not go through the TLS terminator:\n{}",
        stunnel.log()
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn the_current_docker_context_is_used_when_the_provider_block_names_no_daemon() {
    let (_ca_dir, ca) = ca();
    let stunnel = Stunnel::start(&ca);
    let registry = Registry::start();
    let client = ca.client("builder");
    // The docker CLI itself writes the context store and the current context.
    let docker_config = tempfile::Builder::new()
        .prefix("stevedore-dockercfg")
        .tempdir()
        .unwrap();
    let docker = |args: &[&str]| {
        let out = Command::new(acceptance_tests::tools::system("docker"))
            .args(args)
            .env("DOCKER_CONFIG", docker_config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let endpoint = format!(
        "host=tcp://127.0.0.1:{},ca={},cert={},key={}",
        stunnel.port,
        ca.ca_file().display(),
        client.certificate.display(),
        client.key.display()
    );
    docker(&["context", "create", "build-box", "--docker", &endpoint]);
    docker(&["context", "use", "build-box"]);
    let ctx = context("a docker context");
    let config_dir = docker_config.path().display().to_string();
    let tf = Workdir::with_env(
        Mode::Installed,
        &config(&registry, "", ctx.path()),
        &[("DOCKER_CONFIG", &config_dir)],
    );
    applies_and_pushes(&tf, &registry);
    assert!(
        stunnel.log().contains("accepted connection"),
        "{}",
        stunnel.log()
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn tls_daemons_refused_name_the_daemon_and_the_reason() {
    let (ca_dir, ca) = ca();
    let (_other_dir, other_ca) = self::ca();
    let stunnel = Stunnel::start(&ca);
    let registry = Registry::start();
    let client = ca.client("builder");
    let ctx = context("refusals");
    let address = format!("127.0.0.1:{}", stunnel.port);
    let tf = Workdir::new(Mode::Installed, &config(&registry, "", ctx.path()));
    tf.init().success();
    let with = |provider: String| {
        tf.write_config(&config(&registry, &provider, ctx.path()));
        tf.apply()
    };

    // The daemon's certificate is from a CA the client does not trust.
    let wrong_ca = other_ca.docker_cert_dir(&ca_dir.path().join("wrong-ca"), Some(&client));
    fails_saying(
        with(format!(
            "  docker_host      = \"tcp://{address}\"\n  docker_cert_path = {}\n",
            quote(&wrong_ca.display().to_string())
        )),
        &[
            &address,
            "certificate",
            &wrong_ca.join("ca.pem").display().to_string(),
        ],
    );

    // The right CA but no client certificate: the terminator ends the handshake.
    let no_client = ca.docker_cert_dir(&ca_dir.path().join("no-client"), None);
    fails_saying(
        with(format!(
            "  docker_host      = \"tcp://{address}\"\n  docker_cert_path = {}\n",
            quote(&no_client.display().to_string())
        )),
        &[&address, "TLS handshake", "client certificate"],
    );

    // A cert path that is not there (a typo): named as such, not as a TLS failure.
    let missing = ca_dir.path().join("no-such-certs");
    fails_saying(
        with(format!(
            "  docker_host      = \"tcp://{address}\"\n  docker_cert_path = {}\n",
            quote(&missing.display().to_string())
        )),
        &[
            &format!("tcp://{address}"),
            "docker_cert_path",
            "is not a directory",
        ],
    );

    // Plain HTTP to the TLS port.
    fails_saying(
        with(format!("  docker_host = \"tcp://{address}\"\n")),
        &[&format!("tcp://{address}"), "docker_tls_verify"],
    );
    assert_eq!(served_digest(&registry), None, "nothing was pushed");
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn an_ssh_daemon_is_reached_through_the_users_ssh_config() {
    let sshd = Sshd::start();
    let registry = Registry::start();
    let ctx = context("ssh");
    let (home, passwd) = sshd.user_home("stevedore-build-box");
    // Only the alias: port, user, key and host key are in the ssh config alone.
    let provider = "  docker_host = \"ssh://stevedore-build-box\"\n";
    let home_dir = home.path().display().to_string();
    let mut tf = Workdir::with_env(
        Mode::Installed,
        &config(&registry, provider, ctx.path()),
        &[("HOME", &home_dir)],
    );
    tf.run_under(with_passwd(&passwd));
    applies_and_pushes(&tf, &registry);
    let log = sshd.log();
    assert!(
        log.contains(&format!("Accepted publickey for {}", sshd.user)),
        "no ssh login seen:\n{log}"
    );

    // A login the server refuses: ssh's own words, and the daemon, in the diagnostic.
    tf.write_config(&config(
        &registry,
        &format!(
            "  docker_host = \"ssh://nobody-here@127.0.0.1:{}\"\n",
            sshd.port
        ),
        ctx.path(),
    ));
    fs::write(ctx.path().join("app.txt"), "changed\n").unwrap();
    fails_saying(
        tf.apply(),
        &[
            "ssh://nobody-here@127.0.0.1",
            "ssh to nobody-here@127.0.0.1 failed",
            "Permission denied",
        ],
    );
}
