use super::*;
use std::collections::HashMap;
use std::fs;

/// A Docker config directory with `config.json` and contexts as the docker
/// CLI writes them (`docker context create` lays them out this way).
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new(current: Option<&str>) -> Store {
        let dir = tempfile::tempdir().unwrap();
        let config = match current {
            Some(c) => format!(r#"{{"auths":{{}},"currentContext":"{c}"}}"#),
            None => r#"{"auths":{}}"#.to_string(),
        };
        fs::write(dir.path().join("config.json"), config).unwrap();
        Store { dir }
    }

    fn context(&self, name: &str, host: &str, skip_verify: bool, tls: &[&str]) -> &Store {
        let id = context_id(name);
        let meta = self.dir.path().join("contexts/meta").join(&id);
        fs::create_dir_all(&meta).unwrap();
        let json = serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}},
        });
        fs::write(meta.join("meta.json"), json.to_string()).unwrap();
        if !tls.is_empty() {
            let d = self
                .dir
                .path()
                .join("contexts/tls")
                .join(&id)
                .join("docker");
            fs::create_dir_all(&d).unwrap();
            for f in tls {
                fs::write(d.join(f), "pem").unwrap();
            }
        }
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn resolve_with(settings: &DaemonSettings, vars: &[(&str, &str)]) -> Result<Endpoint, String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    resolve(settings, &|name| vars.get(name).cloned())
}

fn in_store(store: &Store) -> DaemonSettings {
    DaemonSettings {
        config_file: Some(store.path().join("config.json")),
        ..Default::default()
    }
}

#[test]
fn the_id_of_a_context_is_the_hex_sha256_of_its_name() {
    assert_eq!(
        context_id("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn the_provider_block_comes_first_then_the_environment_then_the_current_context() {
    let store = Store::new(Some("current"));
    store
        .context("current", "tcp://current:2375", false, &[])
        .context("from-env", "tcp://from-env:2375", false, &[])
        .context("named", "ssh://builder@named", false, &[]);
    let env = [
        ("DOCKER_HOST", "tcp://env-host:2375"),
        ("DOCKER_CONTEXT", "from-env"),
    ];

    let mut s = in_store(&store);
    s.host = Some("unix:///provider.sock".into());
    let e = resolve_with(&s, &env).unwrap();
    assert_eq!(
        (e.host.as_str(), &e.origin),
        ("unix:///provider.sock", &Origin::ProviderBlock)
    );

    let mut s = in_store(&store);
    s.context = Some("named".into());
    let e = resolve_with(&s, &env).unwrap();
    assert_eq!(e.host, "ssh://builder@named");
    assert_eq!(
        e.to_string(),
        "ssh://builder@named (docker context \"named\", docker_context)"
    );

    let s = in_store(&store);
    let e = resolve_with(&s, &env).unwrap();
    assert_eq!(
        (e.host.as_str(), &e.origin),
        ("tcp://env-host:2375", &Origin::EnvHost)
    );

    let e = resolve_with(&s, &[("DOCKER_CONTEXT", "from-env")]).unwrap();
    assert_eq!(e.host, "tcp://from-env:2375");
    assert!(e.to_string().contains("from DOCKER_CONTEXT"), "{e}");

    let e = resolve_with(&s, &[]).unwrap();
    assert_eq!(e.host, "tcp://current:2375");
    assert!(e.to_string().contains("the current context"), "{e}");
}

#[test]
fn the_default_context_is_docker_host_or_the_local_socket() {
    let store = Store::new(Some("default"));
    let s = in_store(&store);
    let e = resolve_with(&s, &[]).unwrap();
    assert_eq!(
        (e.host.as_str(), &e.origin),
        (DEFAULT_SOCKET, &Origin::DefaultSocket)
    );
    assert_eq!(e.tls, None);
    let e = resolve_with(&s, &[("DOCKER_CONTEXT", "default"), ("DOCKER_HOST", "")]).unwrap();
    assert_eq!(
        e.host, DEFAULT_SOCKET,
        "an empty DOCKER_HOST is no DOCKER_HOST"
    );
}

#[test]
fn a_missing_context_is_an_error_naming_it_and_where_it_was_asked() {
    let store = Store::new(Some("gone"));
    let err = resolve_with(&in_store(&store), &[]).unwrap_err();
    assert!(err.contains("\"gone\" (the current context)"), "{err}");
    assert!(err.contains("docker context ls"), "{err}");
    let err = resolve_with(&in_store(&store), &[("DOCKER_CONTEXT", "nope")]).unwrap_err();
    assert!(err.contains("\"nope\" (from DOCKER_CONTEXT)"), "{err}");
}

#[test]
fn a_context_carries_its_tls_files_and_skip_verify() {
    let store = Store::new(None);
    store
        .context(
            "tls",
            "tcp://d:2376",
            false,
            &["ca.pem", "cert.pem", "key.pem"],
        )
        .context("skip", "tcp://d:2376", true, &["cert.pem", "key.pem"])
        .context("plain", "tcp://d:2375", false, &[]);
    let tls_dir = |name: &str| {
        store
            .path()
            .join("contexts/tls")
            .join(context_id(name))
            .join("docker")
    };
    let mut s = in_store(&store);
    s.context = Some("tls".into());
    let tls = resolve_with(&s, &[]).unwrap().tls.unwrap();
    assert_eq!(tls.ca, Some(tls_dir("tls").join("ca.pem")));
    assert_eq!(
        tls.client,
        Some((
            tls_dir("tls").join("cert.pem"),
            tls_dir("tls").join("key.pem")
        ))
    );
    assert!(tls.verify);
    s.context = Some("skip".into());
    let tls = resolve_with(&s, &[]).unwrap().tls.unwrap();
    assert_eq!((tls.ca, tls.verify), (None, false));
    s.context = Some("plain".into());
    assert_eq!(resolve_with(&s, &[]).unwrap().tls, None);
}

#[test]
fn tls_for_a_host_follows_the_cli_flags_and_environment() {
    let certs = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        fs::write(certs.path().join(f), "pem").unwrap();
    }
    let certs_env = certs.path().to_str().unwrap();
    let store = Store::new(None);
    let base = in_store(&store);
    let host = |h: &str| DaemonSettings {
        host: Some(h.into()),
        ..base.clone()
    };

    // DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, as docker-machine prints them.
    let env = [("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", certs_env)];
    let tls = resolve_with(&host("tcp://d:2376"), &env)
        .unwrap()
        .tls
        .unwrap();
    assert!(tls.verify);
    assert_eq!(tls.ca, Some(certs.path().join("ca.pem")));
    // Same through DOCKER_HOST.
    let env_host = [("DOCKER_HOST", "tcp://d:2376"), env[0], env[1]];
    assert!(resolve_with(&base, &env_host).unwrap().tls.unwrap().verify);
    // Without DOCKER_TLS_VERIFY a tcp:// daemon is plain, whatever DOCKER_CERT_PATH says.
    assert_eq!(
        resolve_with(&host("tcp://d:2375"), &env[1..]).unwrap().tls,
        None
    );
    // The provider's false wins over the environment's DOCKER_TLS_VERIFY.
    let mut off = host("tcp://d:2375");
    off.tls_verify = Some(false);
    assert_eq!(resolve_with(&off, &env).unwrap().tls, None);
    // A cert path in the provider block means TLS, verified unless told otherwise.
    let mut with_path = host("tcp://d:2376");
    with_path.cert_path = Some(certs.path().to_path_buf());
    assert!(resolve_with(&with_path, &[]).unwrap().tls.unwrap().verify);
    with_path.tls_verify = Some(false);
    let tls = resolve_with(&with_path, &[]).unwrap().tls.unwrap();
    assert!(!tls.verify);
    assert!(
        tls.client.is_some(),
        "--tls still sends the client certificate"
    );
    // Unix sockets, ssh and http:// never use TLS.
    for h in ["unix:///s.sock", "ssh://me@box", "http://d:2375"] {
        assert_eq!(resolve_with(&host(h), &env).unwrap().tls, None, "{h}");
    }
    // https:// always does; with no cert path anywhere the config dir is used.
    let tls = resolve_with(&host("https://d:2376"), &[])
        .unwrap()
        .tls
        .unwrap();
    assert!(tls.verify);
    assert_eq!(
        tls.ca, None,
        "no ca.pem in the config dir: the system's CAs"
    );
}

#[test]
fn a_cert_path_that_is_not_a_directory_is_named() {
    let store = Store::new(None);
    let mut s = in_store(&store);
    s.host = Some("tcp://d:2376".into());
    s.cert_path = Some(store.path().join("no-such-certs"));
    let err = resolve_with(&s, &[]).unwrap_err();
    assert!(
        err.starts_with("docker_cert_path = ") && err.contains("no-such-certs"),
        "{err}"
    );
    assert!(err.contains("is not a directory"), "{err}");
    s.cert_path = None;
    let env = [
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", "/nonexistent/certs"),
    ];
    let err = resolve_with(&s, &env).unwrap_err();
    assert!(
        err.starts_with("DOCKER_CERT_PATH = \"/nonexistent/certs\""),
        "{err}"
    );
    // Not used without TLS: no complaint, as with the docker CLI.
    s.host = Some("unix:///s.sock".into());
    assert!(resolve_with(&s, &env).is_ok());
}

#[test]
fn an_address_is_shown_without_its_password() {
    let endpoint = Endpoint {
        host: "ssh://me:hunter2@box/run/docker.sock".to_string(),
        tls: None,
        origin: Origin::Context {
            name: "remote".to_string(),
            from: "docker_context",
        },
    };
    assert_eq!(
        endpoint.to_string(),
        "ssh://me:***@box/run/docker.sock (docker context \"remote\", docker_context)"
    );
    assert!(!format!("{endpoint:?}").contains("hunter2"));
    for (address, shown) in [
        ("tcp://box:2376", "tcp://box:2376"),
        ("ssh://me@box", "ssh://me@box"),
        ("ssh://me:p@ss@box/x@y", "ssh://me:***@box/x@y"),
        ("me:pw@box:2375", "me:***@box:2375"),
        ("unix:///var/run/docker.sock", "unix:///var/run/docker.sock"),
    ] {
        assert_eq!(redacted(address), shown);
    }
}
