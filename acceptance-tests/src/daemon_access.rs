//! The ways users reach a Docker daemon on another machine, pointed at this machine's own
//! daemon: a TLS terminator that insists on a client certificate (stunnel, in front of
//! `/var/run/docker.sock`, as `dockerd --tlsverify` would be), and a private sshd on a
//! loopback port whose sessions run the real `docker system dial-stdio`.
//!
//! For ssh the user's own ssh config has to be the one read, and OpenSSH finds `~/.ssh` from
//! the passwd entry, not from `$HOME`. [`Sshd::user_home`] writes a home with `.ssh/config`
//! (a `Host` alias holding the port, user, key and known hosts) and a copy of `/etc/passwd`
//! naming it; [`with_passwd`] is a command prefix that runs terraform in a private
//! mount namespace where that copy is `/etc/passwd`. Nothing of the machine's is changed.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls::TestCa;
use crate::tools;

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited at start ({status}); its log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 20s");
}

/// stunnel on `127.0.0.1:<port>`: TLS with a certificate from `ca`, a client certificate
/// from the same CA required, plain bytes on to the local daemon's socket.
pub struct Stunnel {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Stunnel {
    /// In front of this machine's daemon.
    pub fn start(ca: &TestCa) -> Stunnel {
        Stunnel::start_for(ca, Path::new(DOCKER_SOCKET))
    }

    /// In front of the daemon listening on `socket`.
    pub fn start_for(ca: &TestCa, socket: &Path) -> Stunnel {
        let dir = tempfile::Builder::new()
            .prefix("stevedore-stunnel")
            .tempdir()
            .unwrap();
        let server = ca.server("docker-daemon");
        let port = crate::free_port();
        let conf = dir.path().join("stunnel.conf");
        fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\ndebug = 5\n\n[docker]\naccept = 127.0.0.1:{port}\nconnect = {}\ncert = {}\nkey = {}\nCAfile = {}\nverifyChain = yes\nrequireCert = yes\n",
                socket.display(),
                server.certificate.display(),
                server.key.display(),
                ca.ca_file().display()
            ),
        )
        .unwrap();
        let log_path = dir.path().join("stunnel.log");
        let log = fs::File::create(&log_path).unwrap();
        let mut child = Command::new(tools::system("stunnel4"))
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting stunnel4");
        wait_for_port(port, &mut child, "stunnel4", &log_path);
        Stunnel { port, child, dir }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("stunnel.log")).unwrap_or_default()
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// sshd on `127.0.0.1:<port>`, letting in the current user with a key of the test's.
pub struct Sshd {
    pub port: u16,
    pub user: String,
    /// The client's private key (`id_ed25519`), and the server's public host key line.
    identity: PathBuf,
    host_key_pub: String,
    child: Child,
    dir: tempfile::TempDir,
}

fn keygen(path: &Path) {
    let out = Command::new(tools::system("ssh-keygen"))
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "stevedore-acceptance",
            "-f",
        ])
        .arg(path)
        .output()
        .expect("running ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("stevedore-sshd")
            .tempdir()
            .unwrap();
        let host_key = dir.path().join("host_ed25519");
        let identity = dir.path().join("id_ed25519");
        keygen(&host_key);
        keygen(&identity);
        fs::copy(
            identity.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        // sshd refuses to start without its privilege-separation directory.
        let _ = fs::create_dir_all("/run/sshd");
        let port = crate::free_port();
        let conf = dir.path().join("sshd_config");
        fs::write(
            &conf,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers {user}\nLogLevel VERBOSE\n",
                host_key.display(),
                dir.path().join("authorized_keys").display()
            ),
        )
        .unwrap();
        let log_path = dir.path().join("sshd.log");
        let log = fs::File::create(&log_path).unwrap();
        let mut child = Command::new(tools::system("sshd"))
            .args(["-D", "-e", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting sshd");
        wait_for_port(port, &mut child, "sshd", &log_path);
        let host_key_pub = fs::read_to_string(host_key.with_extension("pub")).unwrap();
        Sshd {
            port,
            user,
            identity,
            host_key_pub: host_key_pub.trim().to_string(),
            child,
            dir,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// A home for the current user whose `.ssh/config` names this server `alias` (port,
    /// user, key, known host key), and a passwd file pointing the user there.
    pub fn user_home(&self, alias: &str) -> (tempfile::TempDir, PathBuf) {
        let home = tempfile::Builder::new()
            .prefix("stevedore-home")
            .tempdir()
            .unwrap();
        let ssh = home.path().join(".ssh");
        fs::create_dir(&ssh).unwrap();
        fs::set_permissions(&ssh, fs::Permissions::from_mode(0o700)).unwrap();
        let key = ssh.join("id_ed25519");
        fs::copy(&self.identity, &key).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(
            ssh.join("known_hosts"),
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key_pub),
        )
        .unwrap();
        let config = ssh.join("config");
        fs::write(
            &config,
            format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n",
                self.port,
                self.user,
                key.display(),
                ssh.join("known_hosts").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        let uid = current_uid();
        let passwd: String = fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .map(|line| {
                let mut fields: Vec<&str> = line.split(':').collect();
                if fields.len() == 7 && fields[2] == uid {
                    fields[5] = home.path().to_str().unwrap();
                }
                fields.join(":") + "\n"
            })
            .collect();
        let passwd_file = home.path().join("passwd");
        fs::write(&passwd_file, passwd).unwrap();
        (home, passwd_file)
    }
}

/// The current uid, from `id -u`.
fn current_uid() -> String {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

/// A command prefix: run the rest in a private mount namespace where `passwd` is
/// `/etc/passwd` (see the module comment).
pub fn with_passwd(passwd: &Path) -> Vec<String> {
    vec![
        tools::system("unshare").display().to_string(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "--".into(),
        "/bin/sh".into(),
        "-c".into(),
        "mount --bind \"$0\" /etc/passwd && exec \"$@\"".into(),
        passwd.display().to_string(),
    ]
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
