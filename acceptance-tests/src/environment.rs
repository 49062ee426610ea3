//! The environment of every command a test runs (terraform, and the provider it starts or
//! the harness attaches): built from nothing, so a developer's shell cannot change a result.
//! `DOCKER_HOST`, `DOCKER_CONTEXT`, `AWS_PROFILE`, `SSL_CERT_FILE`, `TF_LOG` and the like
//! reach a command only when its test sets them; the docker and AWS configuration files are
//! the test's own (empty unless the test writes them), never the user's.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

/// The variables taken from the test process: what finds programs, the user and the
/// locale, nothing that configures docker, AWS, TLS or terraform.
const INHERITED: [&str; 8] = [
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "TZ",
];

/// The defaults every working directory under `root` starts with: a docker config
/// directory of its own, and AWS files that do not exist. A test's own values come after
/// these and replace them.
pub fn private_defaults(root: &Path) -> Vec<(String, String)> {
    let docker = root.join("docker-config");
    fs::create_dir_all(&docker).expect("creating the test's docker config dir");
    vec![
        ("DOCKER_CONFIG".into(), docker.display().to_string()),
        (
            "AWS_CONFIG_FILE".into(),
            root.join("aws-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            root.join("aws-credentials").display().to_string(),
        ),
    ]
}

/// The whole environment of a command: the [`INHERITED`] variables of `parent`, then
/// `own` in order (a later value of a name replaces an earlier one).
pub fn command_env(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    own: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = parent
        .into_iter()
        .filter(|(name, _)| INHERITED.iter().any(|keep| name == keep))
        .collect();
    for (name, value) in own {
        env.retain(|(n, _)| n != name.as_str());
        env.push((name.into(), value.into()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn only_the_listed_variables_and_the_tests_own_reach_a_command() {
        let parent = pairs(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/dev"),
            ("DOCKER_HOST", "tcp://build-box:2376"),
            ("DOCKER_CONTEXT", "remote"),
            ("DOCKER_CONFIG", "/home/dev/.docker"),
            ("AWS_PROFILE", "prod"),
            ("SSL_CERT_FILE", "/etc/corp-ca.pem"),
            ("TF_LOG", "trace"),
            ("HTTPS_PROXY", "http://proxy:3128"),
        ]);
        let own = vec![
            (
                "DOCKER_CONFIG".to_string(),
                "/tmp/t/docker-config".to_string(),
            ),
            ("HOME".to_string(), "/tmp/t/home".to_string()),
        ];
        let env = command_env(parent, &own);
        assert_eq!(
            env,
            pairs(&[
                ("PATH", "/usr/bin"),
                ("DOCKER_CONFIG", "/tmp/t/docker-config"),
                ("HOME", "/tmp/t/home"),
            ])
        );
    }

    #[test]
    fn a_tests_value_replaces_the_default_before_it() {
        let root = tempfile::tempdir().unwrap();
        let mut own = private_defaults(root.path());
        own.push(("DOCKER_CONFIG".into(), "/elsewhere".into()));
        let env = command_env(Vec::new(), &own);
        let docker: Vec<_> = env.iter().filter(|(n, _)| n == "DOCKER_CONFIG").collect();
        assert_eq!(docker, [&("DOCKER_CONFIG".into(), "/elsewhere".into())]);
        assert!(root.path().join("docker-config").is_dir());
        assert!(env
            .iter()
            .any(|(n, v)| n == "AWS_SHARED_CREDENTIALS_FILE"
                && Path::new(v).starts_with(root.path())));
    }
}
