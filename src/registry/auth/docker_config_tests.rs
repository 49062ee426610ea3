use super::*;

fn config(json: &str) -> DockerConfig {
    DockerConfig::from_json(Path::new("/test/config.json"), json).unwrap()
}

fn basic(u: &str, p: &str) -> Credential {
    Credential::Basic {
        username: u.into(),
        password: p.into(),
    }
}

#[tokio::test]
async fn reads_auths_entries_in_both_shapes() {
    // "dTpw" is base64("u:p").
    let c = config(
        r#"{"auths": {
            "127.0.0.1:5000": {"auth": "dTpw"},
            "https://ghcr.io/": {"username": "gu", "password": "gp"},
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldDp3aXRoOmNvbG9ucw=="},
            "acr.example": {"identitytoken": "refresh"},
            "empty.example": {}
        }}"#,
    );
    let got = |host: &'static str| {
        let c = &c;
        async move { c.credential_for(host).await.unwrap().map(|(cred, _)| cred) }
    };
    assert_eq!(got("127.0.0.1:5000").await, Some(basic("u", "p")));
    assert_eq!(got("ghcr.io").await, Some(basic("gu", "gp")));
    // Passwords may contain colons; only the first one separates.
    assert_eq!(
        got("docker.io").await,
        Some(basic("hub", "secret:with:colons"))
    );
    assert_eq!(
        got("registry-1.docker.io").await,
        Some(basic("hub", "secret:with:colons"))
    );
    assert_eq!(
        got("acr.example").await,
        Some(Credential::IdentityToken {
            token: "refresh".into()
        })
    );
    assert_eq!(got("empty.example").await, None);
    assert_eq!(got("other.example").await, None);
}

#[tokio::test]
async fn rejects_a_malformed_auth_field_naming_the_file() {
    let c = config(r#"{"auths": {"r.io": {"auth": "!!!"}}}"#);
    let err = c.credential_for("r.io").await.unwrap_err().to_string();
    assert!(
        err.contains("/test/config.json") && err.contains("not base64"),
        "{err}"
    );
}

#[test]
fn rejects_invalid_json() {
    let err = DockerConfig::from_json(Path::new("/x.json"), "{")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/x.json is not valid JSON"), "{err}");
}

/// Puts a fake `docker-credential-<name>` on PATH. PATH is only extended, so
/// other tests running in parallel still find their programs.
fn install_helper(name: &str, script: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("docker-credential-{name}"));
    std::fs::write(&file, script).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.path().to_path_buf()];
    paths.extend(std::env::split_paths(&old));
    std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
    dir
}

#[tokio::test]
async fn asks_cred_helpers_and_the_default_store() {
    // The helper echoes the server URL it was given, so we can check it.
    let _a = install_helper(
        "stevedoretest",
        "#!/bin/sh\nread url\ncase \"$url\" in\n  \
         nothere*) echo 'credentials not found in native keychain'; exit 1;;\n  \
         token.example) echo '{\"Username\":\"<token>\",\"Secret\":\"idt\"}';;\n  \
         *) printf '{\"ServerURL\":\"%s\",\"Username\":\"user-%s\",\"Secret\":\"s\"}' \
         \"$url\" \"$url\";;\nesac\n",
    );
    let _b = install_helper("stevedorebroken", "#!/bin/sh\necho 'boom' >&2\nexit 3\n");
    let c = config(
        r#"{"credHelpers": {"helped.example": "stevedoretest", "token.example": "stevedoretest",
                             "nothere.example": "stevedoretest", "broken.example": "stevedorebroken"},
            "credsStore": "stevedoretest",
            "auths": {"file.example": {"auth": "dTpw"}}}"#,
    );
    let (cred, source) = c.credential_for("helped.example").await.unwrap().unwrap();
    assert_eq!(cred, basic("user-helped.example", "s"));
    assert_eq!(
        source,
        CredentialSource::CredentialHelper("stevedoretest".into())
    );
    let (cred, _) = c.credential_for("token.example").await.unwrap().unwrap();
    assert_eq!(
        cred,
        Credential::IdentityToken {
            token: "idt".into()
        }
    );
    assert!(c.credential_for("nothere.example").await.unwrap().is_none());
    // auths with real credentials beat the default store.
    let (cred, _) = c.credential_for("file.example").await.unwrap().unwrap();
    assert_eq!(cred, basic("u", "p"));
    // Docker Hub is asked for under its historical URL.
    let (cred, _) = c.credential_for("docker.io").await.unwrap().unwrap();
    assert_eq!(cred, basic("user-https://index.docker.io/v1/", "s"));
    let err = c
        .credential_for("broken.example")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("docker-credential-stevedorebroken") && err.contains("boom"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_helper_says_how_to_fix_it() {
    let c = config(r#"{"credsStore": "stevedore-does-not-exist"}"#);
    let err = c.credential_for("r.io").await.unwrap_err().to_string();
    assert!(
        err.contains("cannot run docker-credential-stevedore-does-not-exist"),
        "{err}"
    );
}
