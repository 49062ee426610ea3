//! The result of one terraform command, with the assertions tests make on it.

use std::fmt;
use std::process::Output;

/// Text that must never appear in any command's output: the provider crashed or hung.
const CRASH_MARKERS: [&str; 3] = ["panic", "plugin did not respond", "crash"];

/// What one command printed and how it exited.
pub struct Run {
    /// The command line, for failure messages.
    pub command: String,
    pub stdout: String,
    pub stderr: String,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
}

impl Run {
    pub fn from_output(command: String, out: Output) -> Run {
        Run {
            command,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the full output unless the command exited 0; returns stdout.
    pub fn success(self) -> String {
        assert!(self.succeeded(), "expected success\n{self}");
        self.stdout
    }

    /// Panics unless the command exited non-zero; returns stderr, where terraform puts
    /// `Error:` diagnostics.
    pub fn failure(self) -> String {
        assert!(
            !self.succeeded() && self.code.is_some(),
            "expected a clean failure\n{self}"
        );
        self.stderr
    }

    /// The first crash marker found in stdout or stderr (case-insensitive), if any.
    pub fn crash_marker(&self) -> Option<&'static str> {
        crash_marker(&self.stdout).or_else(|| crash_marker(&self.stderr))
    }
}

/// The first crash marker in `text`, compared case-insensitively.
pub fn crash_marker(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    CRASH_MARKERS.into_iter().find(|m| lower.contains(m))
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "exit: {:?}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_markers_are_case_insensitive() {
        assert_eq!(
            crash_marker("Error: Plugin did not respond"),
            Some("plugin did not respond")
        );
        assert_eq!(crash_marker("Terraform CRASHED"), Some("crash"));
        assert_eq!(crash_marker("Apply complete! Resources: 0 added."), None);
    }
}
