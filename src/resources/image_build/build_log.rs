//! Where build output goes: every line to the provider log at debug, the
//! lines that start a step (and the push summary) at info, so a CI log at
//! `TF_LOG_PROVIDER=info` follows the build; and, with `build_log_file`,
//! every line to that file as it arrives, so `tail -f` shows progress.

use std::fs::File;
use std::io::Write;

use super::attr;
use crate::diag::Diagnostic;

pub struct BuildLog {
    repository: String,
    file: Option<(String, File)>,
}

impl BuildLog {
    /// Opens (truncates) `path` when given; relative paths are from the
    /// directory terraform runs in.
    pub fn open(repository: &str, path: Option<&str>) -> Result<BuildLog, Diagnostic> {
        let file = match path {
            Some(p) => {
                let f = File::create(p).map_err(|e| {
                    Diagnostic::attr_error(
                        attr::build_log_file,
                        "Build Log Not Writable",
                        format!(
                            "build_log_file = {p:?} cannot be written: {e}. Point it at a writable \
                             path (relative paths are from the directory terraform runs in)."
                        ),
                    )
                })?;
                Some((p.to_string(), f))
            }
            None => None,
        };
        Ok(BuildLog {
            repository: repository.to_string(),
            file,
        })
    }

    pub fn line(&mut self, line: &str) {
        let repository = &self.repository;
        if is_step(line) {
            tracing::info!(target: "stevedore::build", repository = %repository, "{line}");
        } else {
            tracing::debug!(target: "stevedore::build", repository = %repository, "{line}");
        }
        if let Some((path, f)) = &mut self.file {
            // Written line by line, unbuffered: a reader tailing the file sees
            // each line as the daemon sends it.
            if let Err(e) = writeln!(f, "{line}") {
                tracing::warn!(path = %path, error = %e, "could not write the build log; not writing it further");
                self.file = None;
            }
        }
    }
}

/// A line that starts a build step: BuildKit's `[n/m] ...` or `[stage n/m]`
/// vertices, the classic builder's `Step n/m : ...`, and the push summary.
fn is_step(line: &str) -> bool {
    let line = line.trim_start();
    // Several platforms build at once: their lines carry a `[os/arch] ` prefix.
    let line = match line.split_once("] ") {
        Some((prefix, rest))
            if prefix.starts_with("[linux/") || prefix.starts_with("[windows/") =>
        {
            rest
        }
        _ => line,
    };
    line.starts_with("Step ")
        || line.starts_with("pushed ")
        || (line.starts_with('[') && !line.starts_with("[internal]") && !line.ends_with(": CACHED"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_the_push_summary_are_steps() {
        assert!(is_step("Step 2/3 : COPY app.txt /app.txt"));
        assert!(is_step("[2/3] COPY app.txt /app.txt"));
        assert!(is_step("[builder 1/4] RUN make"));
        assert!(is_step(
            "pushed linux/amd64 manifest sha256:ab (streamed from the daemon; ...)"
        ));
        assert!(is_step(
            "[linux/arm64] pushed linux/arm64 manifest sha256:cd (...)"
        ));
        assert!(!is_step("[internal] load build definition from Dockerfile"));
        assert!(!is_step("[1/2] COPY a /a: CACHED"));
        assert!(!is_step(" ---> Using cache"));
        assert!(!is_step("#5 sha256:abc 1.2MB / 3MB"));
    }

    #[test]
    fn every_line_reaches_the_file_as_it_comes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.log");
        let mut log = BuildLog::open("r/web", Some(path.to_str().unwrap())).unwrap();
        log.line("[1/2] COPY a /a");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[1/2] COPY a /a\n",
            "not buffered"
        );
        log.line("some output");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[1/2] COPY a /a\nsome output\n"
        );
        let err = BuildLog::open("r/web", Some("/nonexistent-dir/build.log"))
            .err()
            .unwrap();
        assert_eq!(err.attribute.unwrap().to_string(), attr::build_log_file);
    }
}
