//! A throwaway moto_server for ECS, and just enough of the ECS JSON API to set up a cluster
//! with a Fargate service and watch its deployments. Plain HTTP with a fixed fake SigV4
//! header: moto routes by the credential scope (`.../ecs/aws4_request`) and checks no
//! signature, so no AWS SDK is needed here.
//!
//! NOTE: moto only models deployments: `MOTO_ECS_SERVICE_RUNNING=1` (an integer; "True"
//! silently means 0) makes services report one running task, so a service with
//! desiredCount 1 rolls out COMPLETED at once, and one with desiredCount 2 stays IN_PROGRESS
//! forever (how the tests get a rollout that times out).

use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{free_port, listening, tools};

const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";

/// A SigV4 header moto routes to `service` (`ecs`, `ecr`) by its credential scope.
fn fake_auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature=00"
    )
}

/// Environment the provider needs to reach moto: fake credentials, no instance metadata.
pub const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_REGION", "us-east-1"),
];

/// Puts [`AWS_ENV`] in this process's environment, once, for SDK clients built in the
/// test process (the provider's own processes get it from the harness). Every test that
/// builds one calls this first: the one write happens before any of them reads the
/// environment, never while a loader on another thread does.
pub fn export_aws_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (name, value) in AWS_ENV {
            std::env::set_var(name, value);
        }
    });
}

/// A running moto_server, killed when dropped (or by [`Moto::stop`]).
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    child: Child,
    http: reqwest::blocking::Client,
}

/// The registry credentials an ECR authorization token stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct EcrLogin {
    pub username: String,
    pub password: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster's service and the task definition it runs.
pub struct Service {
    pub cluster: String,
    pub service: String,
    pub task_definition_arn: String,
}

/// Starts `moto_server` on a free loopback port and waits until that process itself
/// listens there; returns it and its `http://127.0.0.1:PORT`. A port another test's server
/// took first makes ours exit on bind: it is started again on another port.
pub fn spawn_moto() -> (Child, String) {
    let binary = tools::tools_dir().join("venv/bin/moto_server");
    assert!(
        binary.is_file(),
        "moto_server not found at {}; {}",
        binary.display(),
        tools::SETUP_HINT
    );
    for _ in 0..3 {
        let port = free_port();
        let mut child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // NOTE: a number, not a boolean: services report this many running tasks and
            // start with rolloutState COMPLETED when it reaches desiredCount.
            .env("MOTO_ECS_SERVICE_RUNNING", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let began = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if listening::listens(child.id(), port) {
                return (child, format!("http://127.0.0.1:{port}"));
            }
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on {port} within 30s"
            );
            sleep(Duration::from_millis(100));
        }
    }
    panic!(
        "moto_server exited at start three times; {}",
        tools::SETUP_HINT
    );
}

impl Moto {
    pub fn start() -> Moto {
        let (child, url) = spawn_moto();
        Moto {
            url,
            child,
            http: reqwest::blocking::Client::new(),
        }
    }

    /// `provider "stevedore" { aws { ... } }` pointing ECS at this moto.
    pub fn provider_block(&self) -> String {
        self.provider_block_with("")
    }

    /// [`Moto::provider_block`] with `extra` lines (such as `registry_auth` blocks) in the
    /// provider block, and ECR pointed at this moto too.
    pub fn provider_block_with(&self, extra: &str) -> String {
        format!(
            "provider \"stevedore\" {{\n{extra}  aws {{\n    region = \"us-east-1\"\n    endpoints {{\n      ecs = \"{url}\"\n      ecr = \"{url}\"\n    }}\n  }}\n}}\n",
            url = self.url
        )
    }

    /// Kills moto now: the endpoint then refuses connections.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Calls ECS operation `op`; panics on an error answer.
    pub fn call(&self, op: &str, body: Value) -> Value {
        self.call_service("ecs", ECS_TARGET_PREFIX, op, body)
    }

    /// What ECR GetAuthorizationToken answers here, decoded as a docker login does
    /// (base64 `user:password`).
    pub fn ecr_login(&self) -> EcrLogin {
        use base64::Engine;
        let out = self.call_service("ecr", ECR_TARGET_PREFIX, "GetAuthorizationToken", json!({}));
        let token = out["authorizationData"][0]["authorizationToken"]
            .as_str()
            .unwrap_or_else(|| panic!("no authorizationToken in {out:#}"));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .expect("the ECR token is base64");
        let text = String::from_utf8(decoded).expect("the ECR token is UTF-8");
        let (username, password) = text
            .split_once(':')
            .expect("the ECR token is user:password");
        EcrLogin {
            username: username.into(),
            password: password.into(),
        }
    }

    fn call_service(&self, service: &str, prefix: &str, op: &str, body: Value) -> Value {
        let answer = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", format!("{prefix}.{op}"))
            .header("Authorization", fake_auth(service))
            .body(body.to_string())
            .send()
            .unwrap_or_else(|e| panic!("{service} {op}: {e}"));
        let status = answer.status();
        let text = answer.text().unwrap_or_default();
        assert!(
            status.is_success(),
            "{service} {op} answered {status}: {text}"
        );
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{service} {op} answered non-JSON ({e}): {text}"))
    }

    /// A cluster with a Fargate service running `image` on `cpu_architecture`
    /// (`X86_64` or `ARM64`) with `desired_count` tasks.
    pub fn fargate_service(
        &self,
        cluster: &str,
        service: &str,
        image: &str,
        cpu_architecture: &str,
        desired_count: u32,
    ) -> Service {
        self.call("CreateCluster", json!({ "clusterName": cluster }));
        let td = self.call(
            "RegisterTaskDefinition",
            json!({
                "family": service,
                "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc",
                "cpu": "256",
                "memory": "512",
                "runtimePlatform": { "operatingSystemFamily": "LINUX", "cpuArchitecture": cpu_architecture },
                "containerDefinitions": [{ "name": "app", "image": image, "essential": true }],
            }),
        );
        let task_definition_arn = td["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .expect("taskDefinitionArn")
            .to_string();
        self.call(
            "CreateService",
            json!({
                "cluster": cluster,
                "serviceName": service,
                "taskDefinition": task_definition_arn,
                "desiredCount": desired_count,
                "launchType": "FARGATE",
            }),
        );
        Service {
            cluster: cluster.into(),
            service: service.into(),
            task_definition_arn,
        }
    }

    /// The service as DescribeServices returns it (`Null` when missing).
    pub fn describe(&self, s: &Service) -> Value {
        let out = self.call(
            "DescribeServices",
            json!({ "cluster": s.cluster, "services": [s.service] }),
        );
        out["services"].get(0).cloned().unwrap_or(Value::Null)
    }

    /// Id of the service's PRIMARY deployment.
    pub fn primary_deployment_id(&self, s: &Service) -> String {
        let svc = self.describe(s);
        let deployments = svc["deployments"].as_array().cloned().unwrap_or_default();
        deployments
            .iter()
            .find(|d| d["status"] == "PRIMARY")
            .and_then(|d| d["id"].as_str())
            .unwrap_or_else(|| panic!("no PRIMARY deployment in {svc:#}"))
            .to_string()
    }

    pub fn delete_service(&self, s: &Service) {
        self.call(
            "DeleteService",
            json!({ "cluster": s.cluster, "service": s.service, "force": true }),
        );
    }
}
