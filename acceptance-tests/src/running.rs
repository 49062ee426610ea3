//! A terraform command running in the background, so a test can act while it runs
//! (wait for a log line, press Ctrl-C) and then collect it like any other [`Run`].

use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::workdir::read;
use crate::{Run, Workdir};

/// A terraform command started by [`Workdir::spawn`]; killed if dropped unfinished.
pub struct Running<'w> {
    dir: &'w Workdir,
    pub(crate) child: Child,
    pub(crate) command: String,
    out: PathBuf,
    err: PathBuf,
}

impl<'w> Running<'w> {
    pub(crate) fn new(
        dir: &'w Workdir,
        child: Child,
        command: String,
        out: PathBuf,
        err: PathBuf,
    ) -> Running<'w> {
        Running {
            dir,
            child,
            command,
            out,
            err,
        }
    }

    /// Sends SIGINT to the command's process group: what Ctrl-C in a terminal does, to
    /// terraform and, when terraform started it, the provider.
    pub fn interrupt(&self) {
        let sent = self.signal_group(libc::SIGINT);
        assert_eq!(
            sent,
            0,
            "SIGINT to `{}`: {}",
            self.command,
            std::io::Error::last_os_error()
        );
    }

    /// Waits (at most `limit`) until the file at `path` holds `needle`, as a build log does
    /// once a step has started; if it never does, presses Ctrl-C and panics with `what`
    /// and what the command printed.
    pub fn wait_for_file(self, path: &Path, needle: &str, limit: Duration, what: &str) -> Self {
        let deadline = Instant::now() + limit;
        while !std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle)) {
            if Instant::now() > deadline {
                self.interrupt();
                panic!(
                    "{what}: {needle:?} not in {}\n{}",
                    path.display(),
                    self.wait()
                );
            }
            sleep(Duration::from_millis(50));
        }
        self
    }

    /// Waits for the command (at most the usual command timeout) and checks it for
    /// crashes, as [`Workdir::run`] does.
    pub fn wait(mut self) -> Run {
        let limit = self.dir.timeout;
        let deadline = Instant::now() + limit;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for terraform") {
                break status.code();
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("`{}` did not finish within {limit:?}", self.command);
            }
            sleep(Duration::from_millis(50));
        };
        let run = self.collect(code);
        self.dir.checked(run)
    }

    /// Kills the command's whole process group. NOTE: terraform re-executes itself
    /// under a panic-catching parent (panicwrap), so killing the pid we started alone
    /// would leave the terraform doing the work, and its provider, running.
    pub(crate) fn kill(&mut self) {
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }

    fn signal_group(&self, signal: i32) -> i32 {
        let group = i32::try_from(self.child.id()).expect("a pid fits in i32");
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe { libc::kill(-group, signal) }
    }

    pub(crate) fn collect(&self, code: Option<i32>) -> Run {
        Run {
            command: self.command.clone(),
            stdout: read(&self.out),
            stderr: read(&self.err),
            code,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
