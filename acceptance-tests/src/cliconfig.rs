//! A private Terraform CLI config whose only source for `stevedore/*` is a filesystem mirror
//! holding the binary under test (`provider_installation { filesystem_mirror { ... } }`, as
//! terraform's `internal/command/cliconfig/provider_installation.go` reads it).

use std::fs;
use std::path::{Path, PathBuf};

/// Namespace, type and version the tests' `required_providers` asks for.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/stevedore/stevedore";
pub const PROVIDER_VERSION: &str = "0.1.0";

/// Copies `binary` into an unpacked mirror under `root/mirror` and writes `root/cli.tfrc`
/// pointing at it; returns the config's path (for `TF_CLI_CONFIG_FILE`).
pub fn write(root: &Path, binary: &Path) -> PathBuf {
    let mirror = root.join("mirror");
    let package = mirror
        .join(PROVIDER_SOURCE)
        .join(PROVIDER_VERSION)
        .join(format!("{}_{}", std::env::consts::OS, go_arch()));
    fs::create_dir_all(&package).unwrap();
    // NOTE: a hard link (or a copy across filesystems), never a symlink: cargo replaces the
    // binary by unlinking it on rebuild, so a link keeps the bytes the lock file hashed at
    // init, and a debug build is a few hundred MB, too big to copy for every test.
    let exe = package.join(format!("terraform-provider-stevedore_v{PROVIDER_VERSION}"));
    // std's hard_link does not follow a symlink, and a link to a link would track it.
    let binary = &fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    if fs::hard_link(binary, &exe).is_err() {
        fs::copy(binary, &exe).unwrap_or_else(|e| panic!("copying {}: {e}", binary.display()));
    }

    let config = root.join("cli.tfrc");
    fs::write(&config, cli_config(&mirror)).unwrap();
    config
}

fn cli_config(mirror: &Path) -> String {
    format!(
        r#"provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/stevedore/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/stevedore/*"]
  }}
}}
"#,
        mirror = mirror.display()
    )
}

/// Go's name for this machine's architecture, as in `linux_amd64`.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_layout_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-provider");
        fs::write(&fake, b"#!/bin/sh\n").unwrap();
        let config = write(dir.path(), &fake);
        let text = fs::read_to_string(config).unwrap();
        assert!(
            text.contains(r#"exclude = ["registry.terraform.io/stevedore/*"]"#),
            "{text}"
        );
        let exe = dir.path().join(format!(
            "mirror/registry.terraform.io/stevedore/stevedore/0.1.0/{}_{}/terraform-provider-stevedore_v0.1.0",
            std::env::consts::OS,
            go_arch()
        ));
        assert!(exe.is_file(), "{}", exe.display());
    }
}
