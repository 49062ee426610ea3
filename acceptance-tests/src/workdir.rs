//! One Terraform working directory per test: `main.tf` from a string, a private CLI config,
//! the provider installed or attached per [`Mode`], and one method per CLI command.

use std::cell::Cell;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::reattach::Attached;
use crate::running::Running;
use crate::{cliconfig, environment, tools, Mode, Run};

/// No single terraform command in these tests should come near this; a hung provider must
/// fail the test, not the CI run.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Workdir {
    /// `tmp/work`, where `main.tf` and the state live.
    pub path: PathBuf,
    terraform: PathBuf,
    envs: Vec<(String, String)>,
    /// Numbers each command's output files.
    commands: Cell<usize>,
    // Dropped before `root` so the provider is gone before its directory is.
    attached: Option<Attached>,
    /// `TF_LOG_PATH`, with [`Workdir::logged`].
    tf_log: Option<PathBuf>,
    /// A command every terraform command runs under (see [`Workdir::run_under`]).
    prefix: Vec<String>,
    /// How long one command may take before it is killed and the test fails.
    pub(crate) timeout: Duration,
    root: TempDir,
}

impl Workdir {
    /// A working dir for `main_tf` with the provider reached as `mode` says.
    pub fn new(mode: Mode, main_tf: &str) -> Workdir {
        Workdir::with_env(mode, main_tf, &[])
    }

    /// As [`Workdir::new`], with extra variables for every command (and, in reattach mode,
    /// for the provider process, which Terraform does not start).
    pub fn with_env(mode: Mode, main_tf: &str, extra: &[(&str, &str)]) -> Workdir {
        let binary = tools::provider_binary();
        let root = temp_root();
        // NOTE: Terraform 1.0.3 `init` skips reattached (unmanaged) providers entirely: with
        // TF_REATTACH_PROVIDERS set it succeeds with only `direct {}` and no network, and writes
        // no lock entry. The mirror is still written in that mode: harmless, and it keeps the
        // CLI config identical in both modes.
        let cli_config = cliconfig::write(root.path(), &binary);
        let reattach = (mode == Mode::Reattach).then_some(binary.as_path());
        Workdir::assemble(root, &cli_config, main_tf, extra, reattach)
    }

    /// A working dir whose CLI config is `cli_config` (its `provider_installation` says
    /// where the provider comes from), for tests of installation itself; Terraform starts
    /// the provider it installed.
    pub fn with_cli_config(main_tf: &str, cli_config: &str, extra: &[(&str, &str)]) -> Workdir {
        let root = temp_root();
        let path = root.path().join("cli.tfrc");
        fs::write(&path, cli_config).unwrap();
        Workdir::assemble(root, &path, main_tf, extra, None)
    }

    fn assemble(
        root: TempDir,
        cli_config: &Path,
        main_tf: &str,
        extra: &[(&str, &str)],
        reattach: Option<&Path>,
    ) -> Workdir {
        let terraform = tools::terraform();
        let path = root.path().join("work");
        fs::create_dir(&path).unwrap();
        // A docker config and AWS files of the test's own, unless `extra` names others.
        let mut envs = environment::private_defaults(root.path());
        envs.extend(
            [
                ("CHECKPOINT_DISABLE", "1"),
                ("TF_IN_AUTOMATION", "1"),
                ("TF_INPUT", "0"),
            ]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        envs.push((
            "TF_CLI_CONFIG_FILE".into(),
            cli_config.display().to_string(),
        ));

        let attached = reattach.map(|binary| Attached::start(binary, root.path(), &envs));
        if let Some(a) = &attached {
            envs.push(("TF_REATTACH_PROVIDERS".into(), a.reattach.clone()));
        }
        let dir = Workdir {
            path,
            terraform,
            envs,
            commands: Cell::new(0),
            attached,
            tf_log: None,
            prefix: Vec::new(),
            timeout: COMMAND_TIMEOUT,
            root,
        };
        dir.write_config(main_tf);
        dir
    }

    /// Runs every later terraform command as `<prefix...> terraform <args>` (the provider
    /// Terraform starts inherits what the prefix sets up). Not for reattach mode, whose
    /// provider the harness starts.
    pub fn run_under(&mut self, prefix: Vec<String>) {
        assert!(self.attached.is_none(), "run_under in reattach mode");
        self.prefix = prefix;
    }

    /// Gives every later command `limit` instead of the usual timeout (for tests of the
    /// harness itself).
    pub fn set_timeout(&mut self, limit: Duration) {
        self.timeout = limit;
    }

    /// The lock file `init` wrote (empty when there is none).
    pub fn lock_file(&self) -> String {
        read(&self.path.join(".terraform.lock.hcl"))
    }

    /// The `hashes` of the lock file's one provider entry, after checking that it is for
    /// `source` at `version`.
    pub fn locked_hashes(&self, source: &str, version: &str) -> Vec<String> {
        let lock = self.lock_file();
        assert!(lock.contains(&format!("provider \"{source}\"")), "{lock}");
        let version_line = format!("version     = \"{version}\"");
        assert!(lock.contains(&version_line), "{lock}");
        let start = lock.find("hashes = [").expect("hashes in the lock file");
        let list = &lock[start..];
        list[..list.find(']').unwrap()]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    /// As [`Workdir::with_env`], with `TF_LOG=trace` for terraform and the provider, and
    /// terraform's log in a file, so [`Workdir::full_log`] sees everything either wrote.
    pub fn logged(mode: Mode, main_tf: &str, extra: &[(&str, &str)]) -> Workdir {
        let mut env: Vec<(&str, &str)> = vec![("TF_LOG", "trace")];
        env.extend_from_slice(extra);
        let mut dir = Workdir::with_env(mode, main_tf, &env);
        let log_path = dir.root.path().join("terraform.log");
        dir.envs
            .push(("TF_LOG_PATH".into(), log_path.display().to_string()));
        dir.tf_log = Some(log_path);
        dir
    }

    /// Terraform's log file (with [`Workdir::logged`]) and the provider's own stderr in
    /// reattach mode: every line either wrote so far.
    pub fn full_log(&self) -> String {
        let tf = self.tf_log.as_ref().map(|p| read(p)).unwrap_or_default();
        format!("{tf}\n{}", self.provider_log())
    }

    /// Panics unless the logs hold `message`, logged by the provider itself: a search of
    /// the logs for what must be absent is only meaningful once this holds.
    pub fn assert_provider_logged(&self, message: &str) {
        let log = self.full_log();
        let from_provider = log.lines().any(|line| {
            line.contains(message)
                && (line.contains("\"@module\":\"stevedore\"")
                    || line.contains("provider.terraform-provider-stevedore"))
        });
        assert!(
            from_provider,
            "no provider log line with {message:?} ({} bytes of log)",
            log.len()
        );
    }

    /// Replaces `main.tf`.
    pub fn write_config(&self, main_tf: &str) {
        fs::write(self.path.join("main.tf"), main_tf).unwrap();
    }

    pub fn init(&self) -> Run {
        self.run(&["init"])
    }

    pub fn plan(&self) -> Run {
        self.run(&["plan"])
    }

    /// `plan -out` then `show -json` of that plan.
    pub fn plan_json(&self) -> Value {
        self.run(&["plan", "-out=tfplan"]).success();
        json(&self.run(&["show", "-json", "tfplan"]).success())
    }

    pub fn apply(&self) -> Run {
        self.run(&["apply", "-auto-approve"])
    }

    pub fn destroy(&self) -> Run {
        self.run(&["destroy", "-auto-approve"])
    }

    pub fn import(&self, address: &str, id: &str) -> Run {
        self.run(&["import", address, id])
    }

    /// All outputs as terraform prints them: `{name: {value, type, sensitive}}`.
    pub fn output_json(&self) -> Value {
        json(&self.run(&["output", "-json"]).success())
    }

    /// The value of one output; panics if it does not exist.
    pub fn output(&self, name: &str) -> Value {
        let all = self.output_json();
        match all.get(name) {
            Some(o) => o["value"].clone(),
            None => panic!("no output {name:?}; outputs: {all:#}"),
        }
    }

    /// `show -json` of the state.
    pub fn state_json(&self) -> Value {
        json(&self.run(&["show", "-json"]).success())
    }

    /// The attributes of resource `address` in the state (`Null` when it is not there).
    pub fn resource_values(&self, address: &str) -> Value {
        let state = self.state_json();
        state["values"]["root_module"]["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["address"] == address))
            .map(|r| r["values"].clone())
            .unwrap_or(Value::Null)
    }

    /// Both plans terraform-plugin-testing checks after an apply, without and with refresh,
    /// with `-detailed-exitcode` (0 = no changes, 2 = changes, 1 = error).
    pub fn plans(&self) -> [Run; 2] {
        [
            self.run(&["plan", "-refresh=false", "-detailed-exitcode"]),
            self.run(&["plan", "-detailed-exitcode"]),
        ]
    }

    /// Whether `plan -detailed-exitcode` (with refresh, as a user runs it) plans changes.
    /// Panics, showing the plan, when the plan fails (exit 1) or crashes: a failing plan
    /// must never pass for "changes".
    pub fn plan_has_changes(&self) -> bool {
        let run = self.run(&["plan", "-detailed-exitcode"]);
        match run.code {
            Some(0) => false,
            Some(2) => true,
            _ => panic!("the plan failed instead of planning\n{run}"),
        }
    }

    /// Panics, showing the plan, unless both plans are empty.
    pub fn assert_plans_empty(&self) {
        for plan in self.plans() {
            assert!(
                plan.succeeded(),
                "the plan after apply was not empty\n{plan}"
            );
        }
    }

    /// The provider's process id, in reattach mode (Terraform starts its own otherwise).
    pub fn provider_pid(&self) -> Option<u32> {
        self.attached.as_ref().map(Attached::pid)
    }

    /// What the provider wrote to stderr, in reattach mode (Terraform relays it otherwise).
    pub fn provider_log(&self) -> String {
        self.attached
            .as_ref()
            .map(Attached::log_text)
            .unwrap_or_default()
    }

    /// Runs `terraform <args> -no-color` here; panics if it times out or any output, the
    /// provider's own log included, shows a crash.
    pub fn run(&self, args: &[&str]) -> Run {
        self.start(args).wait()
    }

    /// Starts `terraform <args> -no-color` here, so a test can act while it runs:
    /// [`Running::interrupt`] does what Ctrl-C does.
    pub fn spawn(&self, args: &[&str]) -> Running<'_> {
        self.start(args)
    }

    /// Every command runs in a process group of its own, as a shell starts a foreground
    /// job: a timeout kills the group, so neither the terraform that does the work (under
    /// terraform's panicwrap parent) nor the provider it started outlives the test. Its
    /// environment is built from nothing ([`environment::command_env`]).
    fn start(&self, args: &[&str]) -> Running<'_> {
        let n = self.commands.get();
        self.commands.set(n + 1);
        let out = self.root.path().join(format!("cmd{n}.stdout"));
        let err = self.root.path().join(format!("cmd{n}.stderr"));
        let mut cmd = match self.prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(&self.terraform);
                c
            }
            None => Command::new(&self.terraform),
        };
        cmd.args(args)
            .arg("-no-color")
            .current_dir(&self.path)
            .stdin(Stdio::null());
        cmd.process_group(0);
        cmd.env_clear()
            .envs(environment::command_env(std::env::vars_os(), &self.envs));
        cmd.stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        let command = format!("terraform {}", args.join(" "));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command}: {e}"));
        Running::new(self, child, command, out, err)
    }

    /// Waits until the logs (see [`Workdir::full_log`]) hold `needle`; panics after
    /// `limit`, or if `running` exits first.
    pub fn wait_for_log(&self, running: &mut Running<'_>, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.full_log().contains(needle) {
            if let Some(status) = running.child.try_wait().expect("waiting for terraform") {
                panic!(
                    "`{}` exited ({status}) before logging {needle:?}\n{}",
                    running.command,
                    running.collect(status.code())
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the logs within {limit:?}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Panics if `run` or the provider's own log shows a crash; returns `run`.
    pub(crate) fn checked(&self, run: Run) -> Run {
        if let Some(marker) = run.crash_marker() {
            panic!("output contains {marker:?}\n{run}");
        }
        if let Some(marker) = crate::run::crash_marker(&self.provider_log()) {
            panic!(
                "provider log contains {marker:?} after `{}`:\n{}",
                run.command,
                self.provider_log()
            );
        }
        run
    }
}

fn temp_root() -> TempDir {
    tempfile::Builder::new()
        .prefix("stevedore-acc")
        .tempdir()
        .unwrap()
}

pub(crate) fn read(path: &Path) -> String {
    String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("terraform printed invalid JSON ({e}):\n{text}"))
}
