//! The release artifacts under test: `scripts/release.sh` run once per test process into a
//! directory of the target dir, signed with a throwaway GPG key made for the run.
//!
//! The release build (two musl targets) is the slow part; cargo keeps it in the target dir,
//! so a run after a change rebuilds only the provider crate, and a second run of the script
//! (the reproducibility test) only checks, smoke-tests and packages again.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::tools;
use crate::zipfile::{self, Entry};

pub const NAME: &str = "terraform-provider-stevedore";

/// A finished `scripts/release.sh` run.
pub struct Dist {
    pub dir: PathBuf,
    pub version: String,
    /// The public half of the key that signed the sums, ASCII-armored.
    pub public_key: String,
    /// Its fingerprint (40 hex digits).
    pub fingerprint: String,
    /// How long the script took.
    pub took: Duration,
}

impl Dist {
    pub fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(self.file(suffix))
    }

    /// `terraform-provider-stevedore_<V>_<suffix>`, e.g. `file("linux_amd64.zip")`.
    pub fn file(&self, suffix: &str) -> String {
        format!("{NAME}_{}_{suffix}", self.version)
    }

    pub fn zip(&self, platform: &str) -> PathBuf {
        self.path(&format!("{platform}.zip"))
    }

    /// `SHA256SUMS` as `(sha256 hex, file name)` pairs.
    pub fn sums(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(self.path("SHA256SUMS")).expect("reading SHA256SUMS");
        text.lines()
            .map(|line| {
                let (sum, name) = line
                    .split_once("  ")
                    .unwrap_or_else(|| panic!("not a sha256sum line: {line:?}"));
                (sum.to_string(), name.to_string())
            })
            .collect()
    }

    /// The files of the zip for `platform` (e.g. `linux_amd64`).
    pub fn entries(&self, platform: &str) -> Vec<Entry> {
        let zip = self.zip(platform);
        let bytes = fs::read(&zip).unwrap_or_else(|e| panic!("reading {}: {e}", zip.display()));
        zipfile::read(&bytes).unwrap_or_else(|e| panic!("{}: {e}", zip.display()))
    }

    /// The one file of the zip for `platform`, checked to be what the Registry wants: the
    /// binary named for the version, a regular file with mode 0755, no extra fields.
    pub fn binary(&self, platform: &str) -> Entry {
        let mut files = self.entries(platform);
        assert_eq!(files.len(), 1, "{platform}: {files:?}");
        let file = files.remove(0);
        assert_eq!(file.name, format!("{NAME}_v{}", self.version));
        assert_eq!(file.unix_mode, 0o100755, "{platform}: a regular file, 0755");
        assert_eq!(
            file.extra_len, 0,
            "{platform}: extra fields (uid, gid, times)"
        );
        file
    }

    /// The key ID Terraform prints: the last 16 hex digits of the fingerprint.
    pub fn key_id(&self) -> &str {
        &self.fingerprint[self.fingerprint.len() - 16..]
    }
}

/// The signed release, built by the first test that asks for it. A failed build fails
/// every test that needs it, with the script's output, without running it again.
pub fn dist() -> &'static Dist {
    static DIST: OnceLock<Result<Dist, String>> = OnceLock::new();
    let built = DIST.get_or_init(|| {
        let gnupg = Gnupg::new();
        let dir = runs_dir().join("signed");
        let (took, out) = run_script(&dir, &[("GPG_FINGERPRINT", &gnupg.fingerprint)], &gnupg);
        if !out.status.success() {
            return Err(script_failure(&out));
        }
        Ok(Dist {
            dir,
            version: cargo_version(),
            public_key: gnupg.export_public(),
            fingerprint: gnupg.fingerprint.clone(),
            took,
        })
    });
    built.as_ref().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the script again into `runs_dir()/<name>` with `env` added (no signing key), after
/// [`dist`]; returns how long it took and what it printed.
pub fn run_again(name: &str, env: &[(&str, &str)], umask: u32) -> (PathBuf, Duration, Output) {
    let dir = runs_dir().join(name);
    let mut cmd = script_command(&dir);
    cmd.envs(env.iter().copied());
    // The umask must not matter: the script sets the mode it ships.
    let script = format!("umask {umask:03o}; exec bash scripts/release.sh");
    cmd.arg("-c").arg(script);
    let started = Instant::now();
    let out = cmd.output().expect("starting scripts/release.sh");
    (dir, started.elapsed(), out)
}

/// `scripts/release.sh` with nothing but `env`, for tests of its refusals.
pub fn run_with(env: &[(&str, &str)]) -> Output {
    let mut cmd = script_command(&runs_dir().join("refused"));
    cmd.envs(env.iter().copied()).arg("scripts/release.sh");
    cmd.output().expect("starting scripts/release.sh")
}

/// Runs `bin` by hand (directly, or under `qemu`) with no plugin cookie, as the script's
/// smoke test does.
pub fn run_by_hand(bin: &[u8], qemu: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(NAME);
    fs::write(&path, bin).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(qemu.map(Path::new).unwrap_or(&path));
    if qemu.is_some() {
        cmd.arg(&path);
    }
    cmd.env_remove("TF_PLUGIN_MAGIC_COOKIE");
    // A process another test thread forks at the moment of the write can hold the file
    // open for writing until it execs: the kernel then refuses to run it (ETXTBSY).
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            result => {
                return result
                    .unwrap_or_else(|e| panic!("running {qemu:?} {}: {e}", path.display()))
            }
        }
    }
    panic!("{} stayed busy", path.display());
}

/// Panics, showing the script's output, unless it exited 0.
pub fn assert_script_succeeded(out: &Output) {
    assert!(out.status.success(), "{}", script_failure(out));
}

fn script_failure(out: &Output) -> String {
    format!(
        "scripts/release.sh failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_script(dir: &Path, env: &[(&str, &str)], gnupg: &Gnupg) -> (Duration, Output) {
    let mut cmd = script_command(dir);
    cmd.envs(env.iter().copied())
        .env("GNUPGHOME", &gnupg.home)
        .arg("scripts/release.sh");
    let started = Instant::now();
    let out = cmd.output().expect("starting scripts/release.sh");
    (started.elapsed(), out)
}

/// `bash` in the workspace root writing into a fresh `dir`, with the variables that would
/// change the result (a version, a signing key or a time from the caller's shell) removed.
fn script_command(dir: &Path) -> Command {
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap();
    }
    let mut cmd = Command::new("bash");
    // What cargo sets for a test process describes this crate, not the build the script
    // starts; ring's build script reruns when CARGO_MANIFEST_DIR changes, which would
    // recompile the provider at every switch between `make release` and the tests.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_crate = [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ];
        if per_crate.contains(&&*name)
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
        {
            cmd.env_remove(&*name);
        }
    }
    cmd.current_dir(workspace_root())
        .env("DIST", dir)
        .env("CARGO_TARGET_DIR", tools::target_dir())
        .env_remove("VERSION")
        .env_remove("GPG_FINGERPRINT")
        .env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// Where the script's runs go: beside the builds, replaced on every test run.
pub fn runs_dir() -> PathBuf {
    tools::target_dir().join("release-acceptance")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The `[package]` version in the workspace's Cargo.toml, read independently of the script.
pub fn cargo_version() -> String {
    let toml = fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let package = toml.split("\n[").next().unwrap();
    package
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("a version in [package]")
        .to_string()
}

/// The commit time of HEAD: the time the script stores in the zips by default.
pub fn head_commit_time() -> i64 {
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(workspace_root())
        .output()
        .expect("running git");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a commit time from git log")
}

/// A throwaway GPG home with one signing key and no passphrase; its agent is stopped and
/// the directory removed on drop (a short path in /tmp: the agent's socket path is limited).
pub struct Gnupg {
    pub home: PathBuf,
    pub fingerprint: String,
    _dir: tempfile::TempDir,
}

impl Gnupg {
    pub fn new() -> Gnupg {
        let dir = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let mut gnupg = Gnupg {
            home,
            fingerprint: String::new(),
            _dir: dir,
        };
        // RSA, as the Registry's own keys are; Terraform 1.0.3's OpenPGP code reads it.
        gnupg.gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            "stevedore release test <release-test@stevedore.invalid>",
            "rsa2048",
            "sign",
            "never",
        ]);
        let listing = gnupg.gpg(&["--with-colons", "--list-secret-keys"]);
        gnupg.fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_string())
            .expect("a fingerprint in gpg's listing");
        gnupg
    }

    pub fn export_public(&self) -> String {
        self.gpg(&["--armor", "--export", &self.fingerprint])
    }

    fn gpg(&self, args: &[&str]) -> String {
        let out = Command::new("gpg")
            .arg("--batch")
            .args(args)
            .env("GNUPGHOME", &self.home)
            .output()
            .unwrap_or_else(|e| {
                panic!("gpg not found ({e}); scripts/release-tools.sh installs it")
            });
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Default for Gnupg {
    fn default() -> Self {
        Gnupg::new()
    }
}

impl Drop for Gnupg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "all"])
            .env("GNUPGHOME", &self.home)
            .output();
    }
}
