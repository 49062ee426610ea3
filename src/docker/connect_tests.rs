use super::*;
use crate::docker::endpoint::Origin;

/// Why `host` cannot be connected to, as the build's error says it.
fn refused(host: &str, origin: Origin) -> String {
    let endpoint = Endpoint {
        host: host.to_string(),
        tls: None,
        origin,
    };
    match connect(endpoint) {
        Ok(_) => panic!("{host} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_password_in_the_daemon_address_is_never_shown() {
    let context = || Origin::Context {
        name: "remote".to_string(),
        from: "docker_context",
    };
    for (host, origin) in [
        ("ssh://me:hunter2@box", Origin::EnvHost),
        ("ssh://me:hunter2@box:99999", Origin::EnvHost),
        ("ssh://me:hunter2@box/run/docker.sock", context()),
        ("tcp://me:hunter2@box:port", Origin::ProviderBlock),
        ("ftp://me:hunter2@box", Origin::ProviderBlock),
    ] {
        let shown = refused(host, origin);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("me:***@box"), "{shown}");
    }
}
