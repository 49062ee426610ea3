use super::*;
use std::os::unix::fs::PermissionsExt;
use tokio::io::AsyncWriteExt;

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

#[test]
fn the_socket_path_reaches_the_far_side_as_one_word() {
    let t = SshTarget::parse("ssh://me@box/run/a b;echo injected'$(id).sock").unwrap();
    let socket = "/run/a b;echo injected'$(id).sock";
    assert_eq!(t.socket.as_deref(), Some(socket));
    let args = t.ssh_args();
    let at = args.iter().position(|a| a == "box").unwrap();
    // ssh joins the words after the host with spaces for the far side's shell.
    let remote = args[at + 1..].join(" ");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\n' {remote}"))
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout).into_owned();
    let host = format!("unix://{socket}");
    assert_eq!(
        words.lines().collect::<Vec<_>>(),
        ["docker", "--host", host.as_str(), "system", "dial-stdio"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the test `name` of this binary again in a child process, through
/// `sh -c "<setup> exec ..."` with `env` set; the child knows it is one by
/// [`is_child`].
fn in_child(name: &str, setup: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{setup} exec \"$0\" --exact {name} --nocapture --test-threads=1"
        ))
        .arg(exe)
        .env("STEVEDORE_TEST_CHILD", name)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_child(name: &str) -> bool {
    std::env::var("STEVEDORE_TEST_CHILD").is_ok_and(|n| n == name)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_socket_directory_is_the_owners_alone_whatever_the_umask() {
    const NAME: &str =
        "docker::tunnel::tests::the_socket_directory_is_the_owners_alone_whatever_the_umask";
    if !is_child(NAME) {
        return in_child(NAME, "umask 000;", &[]);
    }
    let probe = tempfile::tempdir().unwrap();
    assert_eq!(mode(probe.path()), 0o777, "the child's umask is not 000");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = runtime.enter();
    let tunnel = Tunnel::start(Dial::Ssh(SshTarget::parse("ssh://box").unwrap())).unwrap();
    assert_eq!(mode(tunnel.socket().parent().unwrap()), 0o700);
}

/// An ssh that writes 50 MB of stderr without a newline before its real
/// message: the diagnostic keeps that message and a few KiB, not 50 MB.
#[test]
fn what_ssh_says_is_kept_up_to_its_last_bytes() {
    const NAME: &str = "docker::tunnel::tests::what_ssh_says_is_kept_up_to_its_last_bytes";
    if !is_child(NAME) {
        let bin = tempfile::tempdir().unwrap();
        let ssh = bin.path().join("ssh");
        std::fs::write(
            &ssh,
            "#!/bin/sh\nhead -c 50000000 /dev/zero | tr '\\0' x >&2\necho >&2\n\
             echo 'me@box: Permission denied (publickey).' >&2\nexit 255\n",
        )
        .unwrap();
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap()
        );
        return in_child(NAME, "", &[("PATH", &path)]);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tunnel = Tunnel::start(Dial::Ssh(SshTarget::parse("ssh://me@box").unwrap())).unwrap();
        let mut client = UnixStream::connect(tunnel.socket()).await.unwrap();
        let _ = client
            .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut answer).await;
        let why = tunnel.last_error().expect("ssh's failure is kept");
        assert!(
            why.len() <= SSH_ERROR_BYTES + 100,
            "{} bytes kept",
            why.len()
        );
        assert!(
            why.ends_with("me@box: Permission denied (publickey)"),
            "{}",
            &why[why.len().saturating_sub(200)..]
        );
    });
}

#[tokio::test]
async fn the_tail_of_stderr_drops_the_line_it_cut() {
    let mut said = vec![b'y'; 3 * SSH_ERROR_BYTES];
    said.extend_from_slice(b"\nfirst\n\n  second  \n");
    assert_eq!(stderr_tail(said.as_slice()).await, "first; second");
    let lines: String = (0..20).map(|n| format!("line {n}\n")).collect();
    let kept = stderr_tail(lines.as_bytes()).await;
    assert!(
        kept.starts_with("line 12; ") && kept.ends_with("; line 19"),
        "{kept}"
    );
}
