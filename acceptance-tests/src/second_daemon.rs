//! A second Docker daemon of the test's own, standing in for a native builder on another
//! machine: `dockerd` with its own data root, exec root, pid file, unix socket and config
//! file (the machine's `/etc/docker/daemon.json` names a data root and a storage driver of
//! its own), vfs storage, and no iptables or masquerading, started inside a network
//! namespace made for it (`ip netns add`, then `nsenter --net=`; `ip netns exec` remounts
//! `/sys` and hides the cgroups dockerd needs). The namespace matters twice: the bridge
//! `RUN` steps need (`network bridge not found` without one) is made inside it, and in the
//! machine's own namespace a second dockerd would take over the host's `docker0` (one with
//! `--bridge=none` deletes it, and every `RUN` step of the machine's daemon fails after
//! that). Its socket is a file, so the provider reaches it from here.
//!
//! [`tagged_platforms`] reads a daemon's own record of what it built: the `image tag` events
//! carry the image's labels, and the provider's local build tags end in the platform.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dockerd in a network namespace of its own; stopped, and its namespace and files
/// removed, on drop.
pub struct SecondDaemon {
    pub socket: PathBuf,
    netns: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SecondDaemon {
    /// Starts the daemon and waits (up to 60 s) until it answers `docker version`.
    pub fn start() -> SecondDaemon {
        use std::sync::atomic::{AtomicU32, Ordering};
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::Builder::new()
            .prefix("sd-")
            .tempdir_in("/tmp")
            .unwrap();
        let netns = format!(
            "stevedore-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        run("ip", &["netns", "add", &netns]);
        run("ip", &["-n", &netns, "link", "set", "lo", "up"]);
        let socket = dir.path().join("docker.sock");
        let config = dir.path().join("daemon.json");
        fs::write(&config, "{}").unwrap();
        let log = fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{netns}"))
            .arg("dockerd")
            .args(["--config-file", &path("daemon.json")])
            .args(["--data-root", &path("data")])
            .args(["--exec-root", &path("exec")])
            .args(["--pidfile", &path("dockerd.pid")])
            .args(["-H", &format!("unix://{}", socket.display())])
            .args(["--storage-driver", "vfs"])
            // Its own docker0, inside its namespace: `RUN` steps need a bridge network.
            .args(["--iptables=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let mut daemon = SecondDaemon {
            socket,
            netns,
            child: Some(child),
            dir,
        };
        daemon.wait_until_it_answers();
        daemon
    }

    fn wait_until_it_answers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("dockerd exited at start ({status}):\n{}", self.log());
                }
            }
            let answered = Command::new("docker")
                .args([
                    "-H",
                    &self.host(),
                    "version",
                    "--format",
                    "{{.Server.Version}}",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("dockerd did not answer within 60s:\n{}", self.log());
    }

    /// `unix:///…/docker.sock`, for `docker_host`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Kills the daemon at once (SIGKILL), as a machine that goes away would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // nsenter execs dockerd, so this is dockerd itself.
            let _ = child.kill();
            let _ = child.wait();
        }
        // The containerd it started dies with it or soon after; give the socket back.
        let _ = fs::remove_file(&self.socket);
    }

    /// Stops it cleanly (SIGTERM), waiting up to 20 s, then SIGKILL.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for SecondDaemon {
    fn drop(&mut self) {
        self.stop();
        // Whatever dockerd left running in its exec root (containerd) goes with the
        // namespace's processes: kill any process still inside the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        // A killed dockerd leaves its data root, a RUN step's root file system and its
        // network namespace mounted: unmount them (deepest first), then remove the files.
        let dir = self.dir.path().display().to_string();
        let mut mounted: Vec<String> = fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1).map(str::to_string))
            .filter(|point| point.starts_with(&dir))
            .collect();
        mounted.sort_by(|a, b| b.cmp(a));
        for point in mounted {
            let _ = Command::new("umount").args(["-l", &point]).status();
        }
        let _ = Command::new("rm")
            .args(["-rf", &self.dir.path().display().to_string()])
            .status();
    }
}

/// The platforms (`linux-arm64`) of the local build tags the daemon at `docker_host` wrote
/// since `since` (unix seconds) for images labelled `label` (`key=value`): its own record
/// of which platforms it built.
pub fn tagged_platforms(docker_host: &str, label: &str, since: u64) -> Vec<String> {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = Command::new("docker")
        .args(["-H", docker_host, "events", "--since", &since.to_string()])
        .args(["--until", &until.to_string()])
        .args(["--filter", "type=image", "--filter", "event=tag"])
        .args(["--filter", &format!("label={label}")])
        .args(["--format", "{{.Actor.Attributes.name}}"])
        .output()
        .expect("running docker events");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut platforms: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|name| name.starts_with("stevedore-build/"))
        .filter_map(|name| name.rsplit_once(':').map(|(_, p)| p.to_string()))
        .collect();
    platforms.sort();
    platforms
}

/// Unix seconds now, to pass as `since` to [`tagged_platforms`].
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
