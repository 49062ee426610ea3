//! `make release` as the Terraform Registry and its users take it: the zips hold one static
//! binary each, come out byte-identical from a second run, and install with the real
//! Terraform CLI from a filesystem mirror laid out from dist/ and through the provider
//! registry protocol (HTTPS, signed SHA256SUMS), with the lock file's hashes checked
//! against the zips and the sums.
//!
//! scripts/release.sh runs once per test process (signed with a throwaway key) into the
//! target dir, plus once more, without rebuilding, for the reproducibility check.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use acceptance_tests::hcl::quote;
use acceptance_tests::provider_registry::ProviderRegistry;
use acceptance_tests::release::{self, NAME};
use acceptance_tests::tls::TestCa;
use acceptance_tests::{elf, zipfile, Workdir};
use sha2::{Digest, Sha256};

const PLATFORMS: [&str; 2] = ["linux_amd64", "linux_arm64"];

#[test]
#[ignore = "acceptance: run make testacc"]
fn release_zips_hold_one_static_binary_and_come_out_identical_again() {
    let dist = release::dist();
    eprintln!(
        "release.sh (build, checks, smoke tests, packaging): {:?}",
        dist.took
    );
    let commit_time = release::head_commit_time();
    // The binary for the other architecture runs under qemu-user.
    for (platform, machine, qemu) in [
        ("linux_amd64", elf::X86_64, "qemu-x86_64-static"),
        ("linux_arm64", elf::AARCH64, "qemu-aarch64-static"),
    ] {
        let file = dist.binary(platform);
        // zip keeps DOS times, two seconds apart.
        assert!(
            (file.mtime - commit_time).abs() <= 1,
            "{platform}: stored time {} is not HEAD's commit time {commit_time}",
            file.mtime
        );
        for place in machine_paths() {
            assert!(
                !contains(&file.data, place.as_bytes()),
                "{platform}: the binary names {place}, a path of the machine that built it"
            );
        }
        let elf = elf::facts(&file.data);
        assert_eq!(elf.machine, machine, "{platform}: ELF machine");
        assert!(!elf.needs_loader, "{platform}: dynamically linked");
        let qemu = (platform != host_platform()).then_some(qemu);
        let out = release::run_by_hand(&file.data, qemu);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{platform}: {stderr}");
        assert!(
            stderr.contains("This binary is a plugin"),
            "{platform}: {stderr}"
        );
    }

    let manifest = fs::read(dist.path("manifest.json")).unwrap();
    let root_manifest = release::workspace_root().join("terraform-registry-manifest.json");
    assert_eq!(manifest, fs::read(root_manifest).unwrap());
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(parsed["version"], 1);
    assert_eq!(
        parsed["metadata"]["protocol_versions"],
        serde_json::json!(["6.0"])
    );

    let mut want: Vec<String> = PLATFORMS
        .iter()
        .map(|p| dist.file(&format!("{p}.zip")))
        .collect();
    want.push(dist.file("manifest.json"));
    want.sort();
    let sums = dist.sums();
    assert_eq!(
        sums.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
        want
    );
    for (sum, name) in &sums {
        let bytes = fs::read(dist.dir.join(name)).unwrap();
        assert_eq!(*sum, hex::encode(Sha256::digest(&bytes)), "{name}");
    }
    let sig = fs::read(dist.path("SHA256SUMS.sig")).unwrap();
    assert!(
        !sig.starts_with(b"-----BEGIN"),
        "the Registry wants a binary signature"
    );

    // Again, unsigned, in another time zone and with a umask that would drop the mode bits.
    let (again, took, out) = release::run_again("again", &[("TZ", "Asia/Kolkata")], 0o077);
    release::assert_script_succeeded(&out);
    eprintln!("second release.sh run (cargo finds the builds fresh): {took:?}");
    for suffix in [
        "linux_amd64.zip",
        "linux_arm64.zip",
        "manifest.json",
        "SHA256SUMS",
    ] {
        let name = dist.file(suffix);
        assert!(
            fs::read(dist.dir.join(&name)).unwrap() == fs::read(again.join(&name)).unwrap(),
            "{name} differs between two runs"
        );
    }
    assert!(!again.join(dist.file("SHA256SUMS.sig")).exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("GPG_FINGERPRINT not set"));
}

/// Where this build happened: the checkout, the target dir and the home directory.
fn machine_paths() -> Vec<String> {
    let mut paths = vec![
        release::workspace_root().display().to_string(),
        acceptance_tests::tools::target_dir().display().to_string(),
    ];
    if let Some(home) = std::env::var_os("HOME").filter(|h| h.len() > 1) {
        paths.push(format!("{}/", Path::new(&home).display()));
    }
    paths
}

fn contains(data: &[u8], needle: &[u8]) -> bool {
    data.windows(needle.len()).any(|w| w == needle)
}

/// The release builds' RUSTFLAGS are part of every crate's fingerprint in cargo: naming the
/// checkout there would make each fresh clone rebuild every dependency for both targets,
/// though the target dir (CI's cache) is shared.
#[test]
fn release_rustflags_name_no_path_of_the_checkout() {
    let shared = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .current_dir(release::workspace_root())
        .env("CARGO_TARGET_DIR", shared.path())
        .arg("-c")
        .arg("source scripts/release.sh\nrelease_rustflags")
        .output()
        .expect("starting bash");
    let flags = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = release::workspace_root().display().to_string();
    assert!(!flags.contains(&root), "{flags}");
    // Still remapped: the target dir (generated code) and cargo's registry sources.
    let target = format!("--remap-path-prefix={}=/target", shared.path().display());
    assert!(flags.contains(&target), "{flags}");
    assert!(flags.contains("=/cargo"), "{flags}");
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_version_that_is_not_semver_is_refused_before_building() {
    let out = release::run_with(&[("VERSION", "1.0")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("VERSION '1.0' is not a semantic version"),
        "{stderr}"
    );
    assert!(!stderr.contains("zigbuild"), "{stderr}");
}

/// Stops the gpg-agent a test started for the keyring at `home`.
fn stop_agent(home: &Path) {
    let _ = Command::new("gpgconf")
        .args(["--kill", "all"])
        .env("GNUPGHOME", home)
        .output();
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn asked_to_sign_with_no_key_to_sign_with_the_script_fails_before_building() {
    let empty = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
    let home = empty.path().display().to_string();
    for (fingerprint, said) in [
        (
            "0123456789ABCDEF0123456789ABCDEF01234567",
            "GPG_FINGERPRINT=0123456789ABCDEF0123456789ABCDEF01234567 names no secret key",
        ),
        ("", "GPG_FINGERPRINT is set but empty"),
        (" ", "GPG_FINGERPRINT is set but empty"),
    ] {
        let out = release::run_with(&[("GPG_FINGERPRINT", fingerprint), ("GNUPGHOME", &home)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{fingerprint:?}: {stderr}");
        assert!(stderr.contains(said), "{fingerprint:?}: {stderr}");
        assert!(!stderr.contains("zigbuild"), "{stderr}");
    }
    stop_agent(empty.path());
}

/// The script's signing step alone: `scripts/release.sh` sourced (it then only defines its
/// functions) and `sums_and_signature` run over stand-in zips in a fresh dist directory.
fn signing_step(home: &Path, fingerprint: &str) -> (Output, tempfile::TempDir) {
    let dist = tempfile::tempdir().unwrap();
    for platform in PLATFORMS {
        let zip = format!("{NAME}_0.0.1_{platform}.zip");
        fs::write(dist.path().join(zip), platform).unwrap();
    }
    let out = Command::new("bash")
        .current_dir(release::workspace_root())
        .env("GNUPGHOME", home)
        .env("GPG_FINGERPRINT", fingerprint)
        .env("DIST", dist.path())
        .env("VERSION", "0.0.1")
        .arg("-c")
        .arg("source scripts/release.sh\nsums_and_signature")
        .output()
        .expect("starting bash");
    (out, dist)
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_key_that_cannot_sign_fails_the_release_and_leaves_no_signature() {
    let gnupg = release::Gnupg::new();
    // A key that expired in 2020: gpg lists it, and refuses to sign with it.
    let made = Command::new("gpg")
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(["--faked-system-time", "20200101T000000!", "--quick-gen-key"])
        .args([
            "expired <expired@stevedore.invalid>",
            "ed25519",
            "sign",
            "1d",
        ])
        .env("GNUPGHOME", &gnupg.home)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let sig = format!("{NAME}_0.0.1_SHA256SUMS.sig");
    let (out, dist) = signing_step(&gnupg.home, "expired@stevedore.invalid");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not sign") && stderr.contains("the release is not signed"),
        "{stderr}"
    );
    assert!(!dist.path().join(&sig).exists());

    // The key that can sign does, and the signature is that key's.
    let (out, dist) = signing_step(&gnupg.home, &gnupg.fingerprint);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dist.path().join(&sig).exists());
}

/// A configuration that starts the provider at plan: a build of a small context, planned
/// offline (its context hash is computed, nothing is built).
fn config(source: &str, version: &str, context: &Path) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    stevedore = {{
      source  = {source}
      version = {version}
    }}
  }}
}}

resource "stevedore_image_build" "web" {{
  context    = {context}
  repository = "127.0.0.1:1/release-test/web"
  tags       = ["v1"]
}}
"#,
        source = quote(source),
        version = quote(version),
        context = quote(&context.display().to_string())
    )
}

fn context_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY a.txt /a.txt\n",
    )
    .unwrap();
    fs::write(dir.path().join("a.txt"), "released\n").unwrap();
    dir
}

fn mirror_config(mirror: &Path) -> String {
    format!(
        r#"provider_installation {{
  filesystem_mirror {{
    path    = {}
    include = ["registry.terraform.io/stevedore/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/stevedore/*"]
  }}
}}
"#,
        quote(&mirror.display().to_string())
    )
}

/// The platform Terraform installs for on this machine.
fn host_platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux_arm64",
        _ => "linux_amd64",
    }
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn installs_from_a_filesystem_mirror_of_the_zips_and_plans() {
    let dist = release::dist();
    let mirror = tempfile::tempdir().unwrap();
    // The packed layout: the release zips as they are, under <host>/<namespace>/<type>/.
    let provider_dir = mirror
        .path()
        .join("registry.terraform.io/stevedore/stevedore");
    fs::create_dir_all(&provider_dir).unwrap();
    for platform in PLATFORMS {
        let zip = dist.zip(platform);
        fs::copy(&zip, provider_dir.join(zip.file_name().unwrap())).unwrap();
    }
    let ctx = context_dir();
    let main_tf = config("stevedore/stevedore", &dist.version, ctx.path());
    let tf = Workdir::with_cli_config(
        &main_tf,
        &mirror_config(mirror.path()),
        &[("STEVEDORE_CACHE_DIR", "")],
    );
    tf.init().success();

    // A mirror gives no signed sums, so the lock holds the package's h1: hash alone.
    let hashes = tf.locked_hashes("registry.terraform.io/stevedore/stevedore", &dist.version);
    let want = zipfile::zip_hash1(&dist.entries(host_platform()));
    assert_eq!(hashes, vec![want]);
    let installed = tf.path.join(format!(
        ".terraform/providers/registry.terraform.io/stevedore/stevedore/{}/{}/{NAME}_v{}",
        dist.version,
        host_platform(),
        dist.version
    ));
    let file = dist.binary(host_platform());
    assert!(
        fs::read(&installed).unwrap() == file.data,
        "{} is not the zip's binary",
        installed.display()
    );

    let plan = tf.plan().success();
    assert!(
        plan.contains("stevedore_image_build.web will be created"),
        "{plan}"
    );
    assert!(
        plan.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{plan}"
    );

    // A lock file for both platforms, as the README says to make one for CI: from no lock
    // file, since Terraform checks every platform's package against the hashes it has.
    fs::remove_file(tf.path.join(".terraform.lock.hcl")).unwrap();
    let fs_mirror = format!("-fs-mirror={}", mirror.path().display());
    let platforms: Vec<String> = PLATFORMS.iter().map(|p| format!("-platform={p}")).collect();
    let mut args = vec!["providers", "lock", fs_mirror.as_str()];
    args.extend(platforms.iter().map(String::as_str));
    tf.run(&args).success();
    let mut hashes = tf.locked_hashes("registry.terraform.io/stevedore/stevedore", &dist.version);
    let mut want: Vec<String> = PLATFORMS
        .iter()
        .map(|p| zipfile::zip_hash1(&dist.entries(p)))
        .collect();
    hashes.sort();
    want.sort();
    assert_eq!(hashes, want);
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn an_unpacked_mirror_locks_the_same_h1_as_the_zip() {
    let dist = release::dist();
    let mirror = tempfile::tempdir().unwrap();
    // The unpacked layout: <host>/<namespace>/<type>/<version>/<os_arch>/<the binary>.
    let file = dist.binary(host_platform());
    let dir = mirror.path().join(format!(
        "registry.terraform.io/stevedore/stevedore/{}/{}",
        dist.version,
        host_platform()
    ));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&file.name), &file.data).unwrap();
    fs::set_permissions(dir.join(&file.name), fs::Permissions::from_mode(0o755)).unwrap();
    let ctx = context_dir();
    let main_tf = config("stevedore/stevedore", &dist.version, ctx.path());
    let tf = Workdir::with_cli_config(&main_tf, &mirror_config(mirror.path()), &[]);
    tf.init().success();
    let hashes = tf.locked_hashes("registry.terraform.io/stevedore/stevedore", &dist.version);
    assert_eq!(hashes, vec![zipfile::zip_hash1(&[file])]);
}

fn registry_config() -> &'static str {
    "provider_installation {\n  direct {}\n}\n"
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn installs_through_the_provider_registry_protocol_with_signed_sums() {
    let dist = release::dist();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(ca_dir.path());
    let registry = ProviderRegistry::start(&ca, dist);
    let source = registry.source();
    let ctx = context_dir();
    let ca_file = ca.ca_file().display().to_string();
    let env = [
        ("SSL_CERT_FILE", ca_file.as_str()),
        ("STEVEDORE_CACHE_DIR", ""),
    ];
    let tf = Workdir::with_cli_config(
        &config(&source, &dist.version, ctx.path()),
        registry_config(),
        &env,
    );
    let init = tf.init().success();
    // Terraform checked the signature with the key the registry named.
    assert!(
        init.contains(&format!("key ID {}", dist.key_id())),
        "{init}"
    );

    // From signed sums, the lock holds a zh: hash per SHA256SUMS line, and the h1: hash of
    // the package it installed.
    let hashes = tf.locked_hashes(&source, &dist.version);
    let mut zh: Vec<String> = hashes
        .iter()
        .filter(|h| h.starts_with("zh:"))
        .cloned()
        .collect();
    let mut want: Vec<String> = dist
        .sums()
        .iter()
        .map(|(sum, _)| format!("zh:{sum}"))
        .collect();
    zh.sort();
    want.sort();
    assert_eq!(zh, want, "{hashes:?}");
    let h1: Vec<&String> = hashes.iter().filter(|h| h.starts_with("h1:")).collect();
    let package = zipfile::zip_hash1(&dist.entries(host_platform()));
    assert_eq!(h1, vec![&package], "{hashes:?}");
    assert_eq!(hashes.len(), zh.len() + 1, "{hashes:?}");

    // What Terraform asked, each once, each a GET, in the protocol's order.
    let requests = registry.requests();
    let api = "/v1/providers/stevedore/stevedore";
    let asked: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    let want = [
        "/.well-known/terraform.json".to_string(),
        format!("{api}/versions"),
        format!(
            "{api}/{}/download/linux/{}",
            dist.version,
            &host_platform()[6..]
        ),
        format!("/files/{}", dist.file("SHA256SUMS")),
        format!("/files/{}", dist.file("SHA256SUMS.sig")),
        format!("/files/{}", dist.file(&format!("{}.zip", host_platform()))),
    ]
    .map(|path| format!("GET {path} 200"));
    assert_eq!(asked, want);
    for r in requests.iter().filter(|r| r.path.starts_with("/v1/")) {
        assert!(
            r.terraform_version.is_some(),
            "{} without X-Terraform-Version",
            r.path
        );
    }

    let plan = tf.plan().success();
    assert!(
        plan.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{plan}"
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn sums_that_do_not_match_their_signature_are_refused() {
    let dist = release::dist();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(ca_dir.path());
    let tampered = dist.file("SHA256SUMS");
    // One more line, as if a file were slipped into the release after signing.
    let registry = ProviderRegistry::start_with(&ca, dist, |name, body| {
        if name == tampered {
            body.extend_from_slice(format!("{}  extra.zip\n", "0".repeat(64)).as_bytes());
        }
    });
    let ctx = context_dir();
    let ca_file = ca.ca_file().display().to_string();
    let env = [("SSL_CERT_FILE", ca_file.as_str())];
    let main_tf = config(&registry.source(), &dist.version, ctx.path());
    let tf = Workdir::with_cli_config(&main_tf, registry_config(), &env);
    let stderr = tf.init().failure();
    let flat = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("error checking signature"), "{stderr}");
    assert!(
        tf.lock_file().is_empty(),
        "nothing is locked after a refused install"
    );
}
