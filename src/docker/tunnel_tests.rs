use super::*;

#[test]
fn ssh_urls_become_the_command_the_docker_cli_runs() {
    let t = SshTarget::parse("ssh://deploy@build-box:2222").unwrap();
    assert_eq!(
        t,
        SshTarget {
            host: "build-box".into(),
            user: Some("deploy".into()),
            port: Some(2222),
            socket: None
        }
    );
    assert_eq!(
        t.ssh_args().join(" "),
        "-o ConnectTimeout=30 -o BatchMode=yes -T -l deploy -p 2222 -- build-box docker system dial-stdio"
    );
    // Only the host: user, port and keys come from the ssh config.
    let t = SshTarget::parse("ssh://build-box").unwrap();
    assert_eq!(
        t.ssh_args().join(" "),
        "-o ConnectTimeout=30 -o BatchMode=yes -T -- build-box docker system dial-stdio"
    );
    // A socket path: the daemon on the far side is asked for by --host.
    let t = SshTarget::parse("ssh://me@[::1]/run/user/1000/docker.sock").unwrap();
    assert_eq!(t.host, "::1");
    assert_eq!(
        t.ssh_args()[7..].join(" "),
        "-- ::1 docker --host unix:///run/user/1000/docker.sock system dial-stdio"
    );
}

#[test]
fn ssh_urls_that_cannot_work_are_refused_with_the_value() {
    let err = SshTarget::parse("ssh://me:secret@box").unwrap_err();
    assert!(
        err.contains("\"ssh://me:***@box\" holds a password"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "the password is not repeated: {err}"
    );
    for (url, why) in [
        ("ssh://box?x=1", "no query"),
        ("ssh://", "names no host"),
        ("tcp://box", "not an ssh:// URL"),
    ] {
        let err = SshTarget::parse(url).unwrap_err();
        assert!(
            err.contains(why) && err.contains(&format!("{url:?}")),
            "{url}: {err}"
        );
    }
}
