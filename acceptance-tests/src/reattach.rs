//! Debug mode: the harness starts the provider with `--debug` and hands Terraform the
//! `TF_REATTACH_PROVIDERS` value it prints (PROTOCOL-NOTES §1.8).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::cliconfig::PROVIDER_SOURCE;

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
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} --debug: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || forward_reattach_line(stdout, tx));
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(reattach) => Attached {
                reattach,
                log,
                child,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                panic!(
                    "{} --debug printed no TF_REATTACH_PROVIDERS line within 20s; stderr:\n{stderr}",
                    binary.display()
                );
            }
        }
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

/// Sends the first reattach value found, then keeps draining stdout so the provider never
/// blocks on a full pipe.
fn forward_reattach_line(stdout: impl Read, tx: mpsc::Sender<String>) {
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(json) = parse_reattach_line(&line) {
            let _ = tx.send(json);
            break;
        }
    }
    for _ in lines {}
}

/// The JSON inside `TF_REATTACH_PROVIDERS='…'`, checked to name our provider.
pub fn parse_reattach_line(line: &str) -> Option<String> {
    let start = line.find("TF_REATTACH_PROVIDERS='")? + "TF_REATTACH_PROVIDERS='".len();
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

    #[test]
    fn ignores_other_lines_and_other_providers() {
        assert_eq!(parse_reattach_line("Provider started"), None);
        assert_eq!(
            parse_reattach_line(r#"TF_REATTACH_PROVIDERS='{"x/y/z":{}}'"#),
            None
        );
    }
}
