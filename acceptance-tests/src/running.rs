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

    /// Sends SIGINT to the command's process group (it must come from
    /// [`Workdir::spawn`]): what Ctrl-C in a terminal does, to terraform and, when
    /// terraform started it, the provider.
    pub fn interrupt(&self) {
        let group = i32::try_from(self.child.id()).expect("a pid fits in i32");
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        let sent = unsafe { libc::kill(-group, libc::SIGINT) };
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
        let code = wait(&mut self.child, &self.command);
        let run = self.collect(code);
        self.dir.checked(run)
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
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait(child: &mut Child, command: &str) -> Option<i32> {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for terraform") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{command}` did not finish within {COMMAND_TIMEOUT:?}");
        }
        sleep(Duration::from_millis(50));
    }
}
