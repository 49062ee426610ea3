//! A throwaway OCI registry: Debian's `docker-registry` (CNCF distribution 2.8) on a free
//! loopback port, storing into a temp dir, optionally behind htpasswd basic auth.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::tools;

/// Username and password of a registry started with auth.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A running registry, killed when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`, the host part of image references.
    pub address: String,
    pub credentials: Option<Credentials>,
    child: Child,
    dir: TempDir,
}

impl Registry {
    /// An open registry: anyone may push and pull.
    pub fn start() -> Registry {
        Registry::launch(None, true)
    }

    /// An open registry that refuses DELETE (405), as distribution does without
    /// `storage.delete.enabled` and some hosted registries always do.
    pub fn without_delete() -> Registry {
        Registry::launch(None, false)
    }

    /// A registry that answers 401 unless given these basic-auth credentials.
    pub fn with_auth(username: &str, password: &str) -> Registry {
        Registry::launch(
            Some(Credentials {
                username: username.to_string(),
                password: password.to_string(),
            }),
            true,
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The registry's own log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Bytes of blob data the registry stores (all repositories): what was uploaded.
    pub fn blob_bytes(&self) -> u64 {
        dir_bytes(&self.dir.path().join("data/docker/registry/v2/blobs"))
    }

    fn launch(credentials: Option<Credentials>, delete: bool) -> Registry {
        // NOTE: free_port() can race with another test's registry; ours then exits on bind.
        // Each attempt gets a fresh port, and readiness checks our own marker header.
        for _ in 0..3 {
            if let Some(registry) = Registry::try_launch(credentials.clone(), delete) {
                return registry;
            }
        }
        panic!(
            "docker-registry failed to start three times; {}",
            tools::SETUP_HINT
        );
    }

    fn try_launch(credentials: Option<Credentials>, delete: bool) -> Option<Registry> {
        let binary = tools::system("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("stevedore-registry")
            .tempdir()
            .unwrap();
        let address = format!("127.0.0.1:{}", crate::free_port());
        let auth = credentials
            .as_ref()
            .map(|c| write_htpasswd(&dir, c))
            .unwrap_or_default();
        let marker = dir.path().display().to_string();
        let config = dir.path().join("config.yml");
        fs::write(&config, config_yml(&dir, &address, &marker, &auth, delete)).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut registry = Registry {
            address,
            credentials,
            child,
            dir,
        };
        registry.wait_ready(&marker).then_some(registry)
    }

    /// True once `/v2/` answers with our marker header; false if the process exited (its
    /// port was taken). Panics after 20s.
    fn wait_ready(&mut self, marker: &str) -> bool {
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let v2 = format!("{}/v2/", self.url());
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                eprintln!("docker-registry exited at start; its log:\n{}", self.log());
                return false;
            }
            // 200 when open, 401 with auth: either way it is serving.
            if let Ok(resp) = client.get(&v2).send() {
                let ours = resp
                    .headers()
                    .get(MARKER_HEADER)
                    .is_some_and(|v| v == marker);
                if ours && matches!(resp.status().as_u16(), 200 | 401) {
                    return true;
                }
            }
            sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer {v2} within 20s; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// The `auth:` section, pointing at an htpasswd file made by `htpasswd -Bbn` (distribution
/// accepts bcrypt entries only).
fn write_htpasswd(dir: &TempDir, c: &Credentials) -> String {
    let out = Command::new(tools::system("htpasswd"))
        .args(["-Bbn", &c.username, &c.password])
        .output()
        .expect("running htpasswd");
    assert!(
        out.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.path().join("htpasswd");
    fs::write(&path, out.stdout).unwrap();
    format!(
        "auth:\n  htpasswd:\n    realm: stevedore-test\n    path: {}\n",
        path.display()
    )
}

/// A header each registry adds to its responses, valued with its own temp dir, so readiness
/// checks never mistake another test's registry for ours.
const MARKER_HEADER: &str = "x-stevedore-test-registry";

fn config_yml(dir: &TempDir, address: &str, marker: &str, auth: &str, delete: bool) -> String {
    format!(
        r#"version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: {delete}
http:
  addr: {address}
  secret: stevedore-acceptance
  headers:
    {MARKER_HEADER}: ["{marker}"]
{auth}"#,
        root = dir.path().join("data").display(),
    )
}
