//! A terraform command running in the background, so a test can act while it runs
//! (wait for a log line, press Ctrl-C) and then collect it like any other [`Run`].

use std::path::PathBuf;
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::workdir::{read, COMMAND_TIMEOUT};
use crate::{Run, Workdir};

/// A terraform command started by [`Workdir::spawn`]; killed if dropped unfinished.
pub struct Running<'w> {
    dir: &'w Workdir,
    pub(crate) child: Child,
    pub(crate) command: String,
    out: PathBuf,
    err: PathBuf,
    /// Started in a process group of its own, whose id is the child's pid.
    own_group: bool,
}

impl<'w> Running<'w> {
    pub(crate) fn new(
        dir: &'w Workdir,
        child: Child,
        command: String,
        out: PathBuf,
        err: PathBuf,
        own_group: bool,
    ) -> Running<'w> {
        Running {
            dir,
            child,
            command,
            out,
            err,
            own_group,
        }
    }

    /// Sends SIGINT to the command's process group (it must come from
    /// [`Workdir::spawn`]): what Ctrl-C in a terminal does, to terraform and, when
    /// terraform started it, the provider.
    pub fn interrupt(&self) {
        assert!(
            self.own_group,
            "`{}` has no process group of its own",
            self.command
        );
        let sent = self.signal_group(libc::SIGINT);
        assert_eq!(
            sent,
            0,
            "SIGINT to `{}`: {}",
            self.command,
            std::io::Error::last_os_error()
        );
    }

    /// Waits for the command (at most the usual command timeout) and checks it for
    /// crashes, as [`Workdir::run`] does.
    pub fn wait(mut self) -> Run {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for terraform") {
                break status.code();
            }
            if Instant::now() > deadline {
                self.kill();
                panic!(
                    "`{}` did not finish within {COMMAND_TIMEOUT:?}",
                    self.command
                );
            }
            sleep(Duration::from_millis(50));
        };
        let run = self.collect(code);
        self.dir.checked(run)
    }

    /// Kills the command; with a group of its own, the whole group. NOTE: terraform
    /// re-executes itself under a panic-catching parent (panicwrap), so killing the
    /// pid we started alone would leave the terraform doing the work, and its
    /// provider, running.
    fn kill(&mut self) {
        if self.own_group {
            self.signal_group(libc::SIGKILL);
        } else {
            let _ = self.child.kill();
        }
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
