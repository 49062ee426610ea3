//! Debug mode: the harness starts the provider with `--debug` and hands Terraform the
//! `TF_REATTACH_PROVIDERS` value it prints, as terraform-plugin-go's debug serving does.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::cliconfig::PROVIDER_SOURCE;

const REATTACH_PREFIX: &str = "TF_REATTACH_PROVIDERS='";

/// A provider process in debug mode, killed when dropped.
pub struct Attached {
    /// The JSON to pass as `TF_REATTACH_PROVIDERS`.
    pub reattach: String,
    /// Where the provider's stderr (its logs) goes: Terraform never sees it in this mode.
    pub log: PathBuf,
    child: Child,
}

impl Attached {
    /// Starts `binary --debug` with `envs` (TF_LOG...) and waits up to 20s for its line.
    pub fn start(binary: &Path, dir: &Path, envs: &[(String, String)]) -> Attached {
        let log = dir.join("provider.log");
        let mut child = Command::new(binary)
            .arg("--debug")
            .env_clear()
            .envs(crate::environment::command_env(std::env::vars_os(), envs))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} --debug: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || forward_reattach_line(stdout, tx));
        let problem = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(reattach)) => {
                return Attached {
                    reattach,
                    log,
                    child,
                }
            }
            Ok(Err(line)) => format!("printed an unusable reattach line: {line}"),
            Err(mpsc::RecvTimeoutError::Timeout) => "printed no reattach line within 20s".into(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                "closed stdout without a reattach line".into()
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "{} --debug {problem}\nits stderr:\n{stderr}",
            binary.display()
        );
    }

    /// The provider's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the provider wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the first reattach value found (or the line that mentions one but cannot be used),
/// then keeps draining stdout so the provider never blocks on a full pipe.
fn forward_reattach_line(stdout: impl Read, tx: mpsc::Sender<Result<String, String>>) {
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        // The line before it names the variable too, without a value.
        if !line.contains(REATTACH_PREFIX) {
            continue;
        }
        let _ = tx.send(parse_reattach_line(&line).ok_or(line));
        break;
    }
    for _ in lines {}
}

/// The JSON inside `TF_REATTACH_PROVIDERS='…'`, checked to name our provider.
pub fn parse_reattach_line(line: &str) -> Option<String> {
    let start = line.find(REATTACH_PREFIX)? + REATTACH_PREFIX.len();
    let rest = &line[start..];
    let json = &rest[..rest.find('\'')?];
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value.get(PROVIDER_SOURCE)?;
    Some(json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_terraform_plugin_go_shape() {
        let line = r#"	TF_REATTACH_PROVIDERS='{"registry.terraform.io/stevedore/stevedore":{"Protocol":"grpc","ProtocolVersion":6,"Pid":42,"Test":true,"Addr":{"Network":"unix","String":"/tmp/p"}}}'"#;
        let json = parse_reattach_line(line).expect("found");
        assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    }

    /// A shell script standing in for the provider: prints the line, then waits to be killed.
    #[test]
    fn starts_parses_and_kills_a_debug_provider() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-provider");
        let json = r#"{"registry.terraform.io/stevedore/stevedore":{"Protocol":"grpc","ProtocolVersion":6,"Pid":1,"Test":true,"Addr":{"Network":"unix","String":"/tmp/p"}}}"#;
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = --debug ] || exit 3\necho \"level $TF_LOG\" >&2\n\
             echo 'Provider started. Set TF_REATTACH_PROVIDERS as follows:'\ncat <<'EOT'\n\tTF_REATTACH_PROVIDERS='{json}'\nEOT\n\
             exec sleep 60\n"
        );
        std::fs::write(&fake, script).unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

        let envs = [("TF_LOG".to_string(), "trace".to_string())];
        let attached = Attached::start(&fake, dir.path(), &envs);
        assert_eq!(attached.reattach, json);
        let pid = attached.pid();
        drop(attached);
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        assert!(!alive, "the provider outlived its Attached");
        let log = std::fs::read_to_string(dir.path().join("provider.log")).unwrap();
        assert_eq!(log.trim(), "level trace");
    }

    #[test]
    fn ignores_other_lines_and_other_providers() {
        assert_eq!(parse_reattach_line("Provider started"), None);
        assert_eq!(
            parse_reattach_line(r#"TF_REATTACH_PROVIDERS='{"x/y/z":{}}'"#),
            None
        );
    }
}
