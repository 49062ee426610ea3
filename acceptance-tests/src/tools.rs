//! Finding the programs the acceptance tests drive: the terraform CLI and the provider binary.
//!
//! A missing tool fails the test with a hint instead of skipping it: a green run that tested
//! nothing is worse than a red one.

use std::env;
use std::path::{Path, PathBuf};

/// The hint every "tool not found" failure ends with.
pub const SETUP_HINT: &str =
    "run `make testacc` (it installs the tools with scripts/testenv.sh and builds the provider)";

/// Where scripts/testenv.sh puts its venv and other tools.
pub fn tools_dir() -> PathBuf {
    match env::var_os("STEVEDORE_TOOLS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => home_dir().join(".cache/stevedore"),
    }
}

/// The terraform CLI: `TF_ACC_TERRAFORM_PATH`, else the one testenv.sh installed.
pub fn terraform() -> PathBuf {
    let path =
        env_path("TF_ACC_TERRAFORM_PATH").unwrap_or_else(|| tools_dir().join("venv/bin/terraform"));
    require(&path, "terraform")
}

/// The provider under test: `STEVEDORE_PROVIDER_BIN`, else the debug build in the target dir.
pub fn provider_binary() -> PathBuf {
    let path = env_path("STEVEDORE_PROVIDER_BIN")
        .unwrap_or_else(|| target_dir().join("debug/terraform-provider-stevedore"));
    require(
        &path,
        "the provider binary (cargo build --bin terraform-provider-stevedore)",
    )
}

/// A system program such as `/usr/bin/docker-registry` or `htpasswd`.
pub fn system(name: &str) -> PathBuf {
    let found = env::var_os("PATH")
        .map(|paths| {
            env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or(None);
    match found {
        Some(path) => path,
        None => panic!("{name} is not on PATH; {SETUP_HINT}"),
    }
}

/// Cargo's target dir: `CARGO_TARGET_DIR` (relative to the workspace), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match env_path("CARGO_TARGET_DIR") {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

fn workspace_root() -> PathBuf {
    // This crate lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn require(path: &Path, what: &str) -> PathBuf {
    if !path.is_file() {
        panic!("{what} not found at {}; {SETUP_HINT}", path.display());
    }
    path.to_path_buf()
}

fn env_path(name: &str) -> Option<PathBuf> {
    env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home_dir() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/root"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_provider_names_make_testacc() {
        let err = std::panic::catch_unwind(|| require(Path::new("/nonexistent/x"), "x"))
            .expect_err("a missing tool must fail");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("make testacc"), "{msg}");
    }
}
