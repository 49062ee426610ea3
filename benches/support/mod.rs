//! Helpers for the process-level benchmarks: running a child process while
//! taking its wall time and peak RSS from `wait4`; the registry is the
//! acceptance tests' fixture.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Instant;

/// The benches share the acceptance tests' registry fixture (port-race safe).
pub use acceptance_tests::Registry;

/// What one child process cost.
#[derive(Debug, Clone)]
pub struct Run {
    pub seconds: f64,
    /// Peak resident set of the child itself (ru_maxrss), in MB.
    pub peak_rss_mb: f64,
    /// User + system CPU time of the child (and any children it waited for).
    pub cpu_s: f64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to completion; wall time from spawn to reap, peak RSS from
/// `wait4`. Panics if it fails.
pub fn run_measured(mut command: Command) -> Run {
    let shown = format!("{command:?}");
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("stdout");
    let err_path = out_dir.path().join("stderr");
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let start = Instant::now();
    let child = command.spawn().unwrap_or_else(|e| panic!("{shown}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let seconds = start.elapsed().as_secs_f64();
    // The child was reaped by wait4; std must not wait for it again.
    std::mem::forget(child);
    assert_eq!(reaped, pid, "wait4 {shown}");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(ok, "{shown} failed ({status}):\n{stdout}\n{stderr}");
    Run {
        seconds,
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        cpu_s: tv(usage.ru_utime) + tv(usage.ru_stime),
        stdout,
        stderr,
    }
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// The 1-minute load average: other work on the machine skews wall times.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Peak RSS tracking for a long-running process we do not start (dockerd):
/// writing 5 to clear_refs resets VmHWM, which then reads back as the peak
/// since the reset. Needs root or the process's owner; `None` otherwise.
pub struct PeakWatch {
    pid: u32,
}

impl PeakWatch {
    pub fn for_process(name: &str) -> Option<PeakWatch> {
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == name {
                let watch = PeakWatch { pid };
                return watch.reset().then_some(watch);
            }
        }
        None
    }

    pub fn reset(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// (VmHWM, VmRSS) in MB.
    pub fn read(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        };
        Some((field("VmHWM:")?, field("VmRSS:")?))
    }
}
