//! A table of bad inputs across the provider block and all three types, each rejected
//! by the real terraform CLI (validate, then plan) with a diagnostic that points at the
//! attribute and quotes the bad value, and never a crash.

use std::fs;

use acceptance_tests::hcl::{quote, terraform_block};
use acceptance_tests::{Mode, Workdir};
use serde_json::Value;

/// (block label, HCL body lines, attribute the diagnostic must point at, text it must hold).
type Case = (&'static str, String, &'static str, String);

fn cases(ctx: &str, missing_file: &str) -> (Vec<Case>, Vec<Case>, Vec<Case>, Vec<Case>) {
    let good = |extra: &str| {
        format!(
            "  context    = {}\n  repository = \"127.0.0.1:5000/web\"\n{extra}",
            quote(ctx)
        )
    };
    let long_tag = "t".repeat(129);
    let image_build: Vec<Case> = vec![
        (
            "b01",
            format!(
                "  context    = {}\n  repository = \"127.0.0.1:5000/web\"\n",
                quote("/nonexistent/ctx")
            ),
            "context",
            "/nonexistent/ctx".into(),
        ),
        (
            "b02",
            good("  dockerfile = \"/etc/Dockerfile\"\n"),
            "dockerfile",
            "/etc/Dockerfile".into(),
        ),
        (
            "b03",
            good("  dockerfile = \"../Dockerfile\"\n"),
            "dockerfile",
            "../Dockerfile".into(),
        ),
        (
            "b04",
            good("  platforms = [\"linux/amd46\"]\n"),
            "platforms",
            "amd46".into(),
        ),
        (
            "b05",
            good("  platforms = [\"windows\"]\n"),
            "platforms",
            "windows".into(),
        ),
        ("b06", good("  tags = [\"-bad\"]\n"), "tags", "-bad".into()),
        ("b07", good("  tags = [\"a b\"]\n"), "tags", "a b".into()),
        (
            "b08",
            good(&format!("  tags = [\"{long_tag}\"]\n")),
            "tags",
            long_tag.clone(),
        ),
        (
            "b09",
            format!(
                "  context    = {}\n  repository = \"127.0.0.1:5000/web:v1\"\n",
                quote(ctx)
            ),
            "repository",
            "127.0.0.1:5000/web:v1".into(),
        ),
        (
            "b10",
            format!(
                "  context    = {}\n  repository = \"Web/UPPER\"\n",
                quote(ctx)
            ),
            "repository",
            "Web/UPPER".into(),
        ),
        (
            "b11",
            good("  manifest_format = \"oci2\"\n"),
            "manifest_format",
            "oci2".into(),
        ),
        (
            "b12",
            good("  builder = \"kaniko\"\n"),
            "builder",
            "kaniko".into(),
        ),
        (
            "b13",
            good("  secret_env = { \"bad id!\" = \"HOME\" }\n"),
            "secret_env",
            "bad id!".into(),
        ),
        (
            "b14",
            good("  secret_env = { npm = \"STEVEDORE_ACC_NEVER_SET_4410\" }\n"),
            "secret_env",
            "STEVEDORE_ACC_NEVER_SET_4410".into(),
        ),
        (
            "b15",
            good(&format!(
                "  secret_files = {{ pip = {} }}\n",
                quote(missing_file)
            )),
            "secret_files",
            missing_file.into(),
        ),
        (
            "b16",
            good(&format!("  secret_files = {{ pip = {} }}\n", quote(ctx))),
            "secret_files",
            ctx.into(),
        ),
        (
            "b17",
            good("  secrets = { npm = \"x\" }\n  secret_env = { npm = \"HOME\" }\n"),
            "secret_env",
            "npm".into(),
        ),
        (
            "b18",
            good("  platforms = [\"linux/\"]\n"),
            "platforms",
            "linux/".into(),
        ),
        // Two spellings of one platform: the diagnostic names both.
        (
            "b19",
            good("  platforms = [\"linux/amd64\", \"linux/x86_64\"]\n"),
            "platforms",
            "\"linux/x86_64\" and \"linux/amd64\"".into(),
        ),
        (
            "b20",
            good("  platforms = [\"linux/arm64/v8\", \"linux/aarch64\"]\n"),
            "platforms",
            "\"linux/aarch64\" and \"linux/arm64/v8\"".into(),
        ),
    ];
    let data: Vec<Case> = vec![
        (
            "d01",
            "  image = \"not a reference\"\n".into(),
            "image",
            "not a reference".into(),
        ),
        (
            "d02",
            "  image = \"127.0.0.1:5000/web@sha256:zz\"\n".into(),
            "image",
            "sha256:zz".into(),
        ),
        (
            "d03",
            "  image = \"127.0.0.1:5000/web:latest\"\n  platform = \"linux/amd46\"\n".into(),
            "platform",
            "amd46".into(),
        ),
        (
            "d04",
            "  image = \"127.0.0.1:5000/web:latest\"\n  platform = \"linux\"\n".into(),
            "platform",
            "linux".into(),
        ),
        ("d05", "  image = \"\"\n".into(), "image", "is empty".into()),
        (
            "d06",
            "  image = \"127.0.0.1:5000/Web:latest\"\n".into(),
            "image",
            "Web".into(),
        ),
    ];
    let ecs = |extra: &str| {
        format!(
            "  cluster = \"prod\"\n  service = \"web\"\n  digest  = \"sha256:{}\"\n{extra}",
            "a".repeat(64)
        )
    };
    let ecs_names = |cluster: &str, service: &str| {
        format!(
            "  cluster = {cluster}\n  service = {service}\n  digest  = \"sha256:{}\"\n",
            "a".repeat(64)
        )
    };
    let ecs_cases: Vec<Case> = vec![
        ("e01", format!("  cluster = \"\"\n  service = \"web\"\n  digest  = \"sha256:{}\"\n", "a".repeat(64)), "cluster", "cluster".into()),
        ("e02", format!("  cluster = \"prod\"\n  service = \" \"\n  digest  = \"sha256:{}\"\n", "a".repeat(64)), "service", "service".into()),
        ("e03", ecs("  timeouts {\n    create = \"15 minutes\"\n  }\n"), "create", "15 minutes".into()),
        ("e04", ecs("  timeouts {\n    update = \"-5m\"\n  }\n"), "update", "-5m".into()),
        ("e05", ecs("  timeouts {\n    create = \"2562047h\"\n  }\n"), "create", "2562047h".into()),
        ("e06", ecs("  timeouts {\n    update = \" 20m \"\n  }\n"), "update", " 20m ".into()),
        ("e07", "  cluster = \"prod\"\n  service = \"web\"\n  digest  = \"latest\"\n".into(), "digest", "latest".into()),
        ("e08", "  cluster = \"prod\"\n  service = \"web\"\n  digest  = \"sha256:abc\"\n".into(), "digest", "sha256:abc".into()),
        ("e09", "  cluster = \"prod\"\n  service = \"web\"\n  digest  = \"127.0.0.1:5000/web@sha256:aa\"\n".into(), "digest", "127.0.0.1:5000/web@sha256:aa".into()),
        // Names outside ECS's rules (up to 255 ASCII letters, digits, - and _), or their ARN's.
        ("e10", ecs_names("\"prod\\nblue\"", "\"web\""), "cluster", "\"prod\\nblue\"".into()),
        ("e11", ecs_names("\"prod\"", &format!("\"{}\"", "w".repeat(100_000))), "service", "(100000 characters)".into()),
        ("e12", ecs_names("\"café\"", "\"web\""), "cluster", "\"café\"".into()),
        ("e13", ecs_names("\"prod\"", "\"arn:aws:ecs:us-east-1:123456789012:service/prod/web app\""), "service", "web app".into()),
        ("e14", ecs_names("\"arn:aws:ecs:us-east-1:123456789012:service/web\"", "\"web\""), "cluster", "does not start with cluster/".into()),
    ];
    let providers: Vec<Case> = vec![
        (
            "p01",
            "  docker_host = \"ssh://me@build-box?socket=/run/docker.sock\"\n".into(),
            "docker_host",
            "ssh://me@build-box?socket=/run/docker.sock".into(),
        ),
        (
            "p02",
            "  docker_host = \"docker.example:2376\"\n".into(),
            "docker_host",
            "docker.example:2376".into(),
        ),
        (
            "p03",
            "  docker_host = \"npipe:////./pipe/docker_engine\"\n".into(),
            "docker_host",
            "npipe:////./pipe/docker_engine".into(),
        ),
        (
            "p04",
            "  registry_auth {\n    address = \"http://host/path\"\n  }\n".into(),
            "address",
            "http://host/path".into(),
        ),
        (
            "p05",
            "  registry_auth {\n    address = \"host:99999\"\n  }\n".into(),
            "address",
            "host:99999".into(),
        ),
        // username is absent, so Terraform can only quote the block it belongs in.
        (
            "p06",
            "  registry_auth {\n    address  = \"host:5000\"\n    password = \"p\"\n  }\n".into(),
            "registry_auth",
            "set `username`".into(),
        ),
        // An empty username is no username either.
        (
            "p10",
            "  registry_auth {\n    address  = \"host:5000\"\n    username = \"\"\n    password = \"p\"\n  }\n"
                .into(),
            "username",
            "set `username`".into(),
        ),
        (
            "p07",
            "  registry_auth {\n    address = \"\"\n  }\n".into(),
            "address",
            "\"\"".into(),
        ),
        (
            "p08",
            "  aws {\n    endpoints {\n      ecs = \"not a url\"\n    }\n  }\n".into(),
            "ecs",
            "not a url".into(),
        ),
        (
            "p09",
            "  aws {\n    endpoints {\n      ecr = \"ftp://x\"\n    }\n  }\n".into(),
            "ecr",
            "ftp://x".into(),
        ),
    ];
    (image_build, data, ecs_cases, providers)
}

/// The diagnostics of `terraform validate -json`.
fn diagnostics(tf: &Workdir) -> Vec<Value> {
    let run = tf.run(&["validate", "-json"]);
    let out: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("validate -json printed no JSON ({e})\n{run}"));
    out["diagnostics"].as_array().cloned().unwrap_or_default()
}

/// Whether a diagnostic of block `label` points at `attribute` and quotes `value`.
/// Provider blocks have no label of their own: their diagnostics are found by the
/// line range of the block with `alias = "<label>"`.
fn rejected(
    diags: &[Value],
    label: &str,
    attribute: &str,
    value: &str,
    lines: &[(String, usize, usize)],
) -> bool {
    diags.iter().any(|d| {
        let context = d["snippet"]["context"].as_str().unwrap_or_default();
        let code = d["snippet"]["code"].as_str().unwrap_or_default();
        let line = d["range"]["start"]["line"].as_u64().unwrap_or(0) as usize;
        let in_block = context.contains(&format!("\"{label}\""))
            || lines
                .iter()
                .any(|(l, from, to)| l == label && (*from..=*to).contains(&line));
        let text = format!(
            "{} {}",
            d["summary"].as_str().unwrap_or_default(),
            d["detail"].as_str().unwrap_or_default()
        );
        d["severity"] == "error"
            && in_block
            && code.trim_start().starts_with(attribute)
            && text.contains(value)
    })
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn bad_inputs_are_rejected_naming_the_attribute_and_the_value() {
    let ctx = tempfile::tempdir().unwrap();
    fs::write(ctx.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let ctx_text = ctx.path().display().to_string();
    let missing = ctx.path().join("no-such.tok").display().to_string();
    let (builds, data, ecs, providers) = cases(&ctx_text, &missing);
    let mut tf_config = terraform_block();
    for (label, body, _, _) in &providers {
        // Terraform drops provider configurations nothing uses before validating them.
        tf_config += &format!(
            "provider \"stevedore\" {{\n  alias = \"{label}\"\n{body}}}\n\
             data \"stevedore_image_manifest\" \"uses_{label}\" {{\n  provider = stevedore.{label}\n  image    = \"127.0.0.1:5000/x:1\"\n}}\n"
        );
    }
    for (kind, list) in [
        ("resource \"stevedore_image_build\"", &builds),
        ("data \"stevedore_image_manifest\"", &data),
        ("resource \"stevedore_ecs_redeploy\"", &ecs),
    ] {
        for (label, body, _, _) in list {
            tf_config += &format!("{kind} \"{label}\" {{\n{body}}}\n");
        }
    }
    // Where each provider block starts and ends, by its alias.
    let mut provider_lines = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (n, line) in tf_config.lines().enumerate() {
        if line.starts_with("provider \"stevedore\"") {
            open = Some((String::new(), n + 1));
        }
        if let (Some((label, _)), Some(alias)) = (&mut open, line.trim().strip_prefix("alias = ")) {
            *label = alias.trim_matches('"').to_string();
        }
        if line == "}" {
            if let Some((label, from)) = open.take() {
                provider_lines.push((label, from, n + 1));
            }
        }
    }
    let tf = Workdir::new(Mode::Installed, &tf_config);
    tf.init().success();
    let diags = diagnostics(&tf);
    let mut missed = Vec::new();
    let all: Vec<&Case> = builds
        .iter()
        .chain(&data)
        .chain(&ecs)
        .chain(&providers)
        .collect();
    for (label, _, attribute, value) in &all {
        if !rejected(&diags, label, attribute, value, &provider_lines) {
            missed.push(format!("{label}: nothing at {attribute} quoting {value:?}"));
        }
    }
    assert!(
        missed.is_empty(),
        "{} of {} bad inputs not rejected as they should be:\n{}\n\ndiagnostics:\n{:#}",
        missed.len(),
        all.len(),
        missed.join("\n"),
        Value::Array(diags.clone())
    );
    // The same configuration fails the plan, cleanly (Workdir::run panics on a crash).
    let stderr = tf.plan().failure();
    assert!(stderr.contains("Error:"), "{stderr}");
    eprintln!("{} bad inputs rejected with attribute and value", all.len());
}
