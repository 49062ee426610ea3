//! A throwaway OCI registry: Debian's `docker-registry` (CNCF distribution 2.8) on a free
//! loopback port, storing into a temp dir, optionally behind htpasswd basic auth or a
//! token service ([`crate::token_server`]), optionally over HTTPS with a test CA.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use std::sync::Arc;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::Method;
use tempfile::TempDir;

use crate::tls::TestCa;
use crate::token_server::{TokenServer, ISSUER, SERVICE};
use crate::tools;

/// Username and password of a registry started with auth.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// How to start a registry.
#[derive(Default)]
pub struct Options {
    /// Basic auth (htpasswd) with these credentials, unless `token` is set.
    pub credentials: Option<Credentials>,
    /// Refuse DELETE (405).
    pub no_delete: bool,
    /// Serve HTTPS with a certificate from this CA.
    pub tls: Option<Arc<TestCa>>,
    /// `auth: token` with this token service (credentials then name a user of it).
    pub token: Option<Arc<TokenServer>>,
    /// Keep the access log, for asserting which requests were made.
    pub access_log: bool,
}

/// A running registry, killed when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`, the host part of image references.
    pub address: String,
    pub credentials: Option<Credentials>,
    pub token: Option<Arc<TokenServer>>,
    tls: Option<Arc<TestCa>>,
    child: Child,
    dir: TempDir,
}

impl Registry {
    /// An open registry: anyone may push and pull.
    pub fn start() -> Registry {
        Registry::launch(Options::default())
    }

    /// An open registry that refuses DELETE (405), as distribution does without
    /// `storage.delete.enabled` and some hosted registries always do.
    pub fn without_delete() -> Registry {
        Registry::launch(Options {
            no_delete: true,
            ..Options::default()
        })
    }

    /// A registry that answers 401 unless given these basic-auth credentials.
    pub fn with_auth(username: &str, password: &str) -> Registry {
        Registry::launch(Options {
            credentials: Some(Credentials {
                username: username.to_string(),
                password: password.to_string(),
            }),
            ..Options::default()
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://` when it serves TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// An HTTP client trusting the registry's CA (if any).
    pub fn http(&self) -> Client {
        let mut builder = Client::builder();
        if let Some(ca) = &self.tls {
            let cert = reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap();
            builder = builder.tls_certs_merge([cert]);
        }
        builder.build().expect("an HTTP client")
    }

    /// `method` on `path` (`/v2/…`), authorized as the registry wants: basic credentials,
    /// or a token minted for the repository the path names (pull, push and delete).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http().request(method, format!("{}{path}", self.url()));
        self.authorize(request, path)
    }

    /// Adds what `path` needs to `request` (see [`Registry::request`]).
    pub fn authorize(&self, request: RequestBuilder, path: &str) -> RequestBuilder {
        if let Some(token) = &self.token {
            let name = repository_of(path);
            return request.bearer_auth(token.mint(&name, &["pull", "push", "delete"]));
        }
        match &self.credentials {
            Some(c) => request.basic_auth(&c.username, Some(&c.password)),
            None => request,
        }
    }

    /// The access log lines (requests the registry served), when started with `access_log`.
    pub fn access_log(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("\"GET ")
                    || l.contains("\"HEAD ")
                    || l.contains("\"PUT ")
                    || l.contains("\"POST ")
                    || l.contains("\"PATCH ")
                    || l.contains("\"DELETE ")
            })
            .map(str::to_string)
            .collect()
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

    /// A registry started as `options` say.
    pub fn launch(options: Options) -> Registry {
        // NOTE: free_port() can race with another test's registry; ours then exits on bind.
        // Each attempt gets a fresh port, and readiness checks our own marker header.
        for _ in 0..3 {
            if let Some(registry) = Registry::try_launch(&options) {
                return registry;
            }
        }
        panic!(
            "docker-registry failed to start three times; {}",
            tools::SETUP_HINT
        );
    }

    fn try_launch(options: &Options) -> Option<Registry> {
        let binary = tools::system("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("stevedore-registry")
            .tempdir()
            .unwrap();
        let address = format!("127.0.0.1:{}", crate::free_port());
        let auth = match (&options.token, &options.credentials) {
            (Some(token), _) => write_token_auth(&dir, token),
            (None, Some(c)) => write_htpasswd(&dir, c),
            (None, None) => String::new(),
        };
        let tls = options
            .tls
            .as_ref()
            .map(|ca| {
                let files = ca.server("registry");
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    files.certificate.display(),
                    files.key.display()
                )
            })
            .unwrap_or_default();
        let marker = dir.path().display().to_string();
        let config = dir.path().join("config.yml");
        let yml = config_yml(&dir, &address, &marker, &auth, !options.no_delete)
            .replace(
                "  secret: stevedore-acceptance\n",
                &format!("  secret: stevedore-acceptance\n{tls}"),
            )
            .replace(
                "    disabled: true",
                if options.access_log {
                    "    disabled: false"
                } else {
                    "    disabled: true"
                },
            );
        fs::write(&config, yml).unwrap();
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
            credentials: options.credentials.clone(),
            token: options.token.clone(),
            tls: options.tls.clone(),
            child,
            dir,
        };
        registry.wait_ready(&marker).then_some(registry)
    }

    /// True once `/v2/` answers with our marker header; false if the process exited (its
    /// port was taken). Panics after 20s.
    fn wait_ready(&mut self, marker: &str) -> bool {
        let client = self.http();
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

/// The `auth: token` section trusting `token`'s signing certificate.
fn write_token_auth(dir: &TempDir, token: &TokenServer) -> String {
    let bundle = dir.path().join("token-signer.pem");
    fs::write(&bundle, &token.cert_pem).unwrap();
    format!(
        "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        token.realm,
        bundle.display()
    )
}

/// The repository a `/v2/<name>/(manifests|blobs|tags)/…` path names.
fn repository_of(path: &str) -> String {
    let rest = path.trim_start_matches("/v2/");
    for marker in ["/manifests/", "/blobs/", "/tags/"] {
        if let Some((name, _)) = rest.split_once(marker) {
            return name.to_string();
        }
    }
    rest.trim_end_matches('/').to_string()
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
