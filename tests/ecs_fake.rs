//! `stevedore::ecs` and `stevedore_ecs_redeploy` against a fake ECS endpoint
//! that keeps state as ECS does (tests/ecs_fake/model.rs) and checks what it
//! is sent: the hostile cases a real deployment produces (platform pull
//! failures, circuit-breaker rollback, throttling, services deleted out of
//! band, timeouts, cancellation) and the calls each case must make.

#[path = "ecs_fake/model.rs"]
mod model;
#[path = "ecs_fake/ops.rs"]
mod ops;
#[path = "ecs_fake/server.rs"]
mod server;

#[path = "provenance_support/mod.rs"]
mod provenance_support;
#[path = "registry_fixture/mod.rs"]
mod registry_fixture;

#[path = "ecs_fake/apply.rs"]
mod apply;
#[path = "ecs_fake/arch.rs"]
mod arch;
#[path = "ecs_fake/failures.rs"]
mod failures;
#[path = "ecs_fake/fake_itself.rs"]
mod fake_itself;
#[path = "ecs_fake/follow.rs"]
mod follow;
#[path = "ecs_fake/provenance.rs"]
mod provenance;
#[path = "ecs_fake/terraform.rs"]
mod terraform;
#[path = "ecs_fake/wait.rs"]
mod wait;

use std::time::Duration;

use stevedore::ecs::{self, EcsError};
use tokio_util::sync::CancellationToken;

use aws_sdk_ecs::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
use stevedore::ecs::PollPolicy;

use model::Model;
use server::FakeEcs;

pub const CLUSTER: &str = "prod";
pub const SERVICE: &str = "web";
pub const DIGEST_A: &str =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const DIGEST_B: &str =
    "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const IMAGE_REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web";
pub const PLATFORM_REASON: &str =
    "CannotPullContainerError: pull image manifest has been retried 7 time(s): \
    image Manifest does not contain descriptor matching platform 'linux/amd64'";

/// A client with the SDK's own retries off, so the tests see what our code does.
pub fn client(fake: &FakeEcs) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&fake.url)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::disabled())
        .http_client(stevedore::aws::https_client())
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

pub fn fast() -> PollPolicy {
    PollPolicy {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
        factor: 2.0,
        stopped_task_limit: 3,
    }
}

/// Cluster `prod` with service `web` (one task of `web:1`, image pinned to
/// DIGEST_A, Fargate). Returns the model and the service's deployment id.
pub fn prod_web() -> (Model, String) {
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    let def = m.register("web", &[("app", &format!("{IMAGE_REPO}@{DIGEST_A}"))], None);
    let id = m.add_service(CLUSTER, SERVICE, &def, 1);
    (m, id)
}

pub async fn wait(
    fake: &FakeEcs,
    id: &str,
    timeout: Duration,
    cancel: CancellationToken,
) -> Result<ecs::DeploymentOutcome, EcsError> {
    ecs::wait_for_deployment(&client(fake), CLUSTER, SERVICE, id, timeout, cancel, fast()).await
}

pub async fn force(fake: &FakeEcs) -> ecs::StartedDeployment {
    ecs::force_new_deployment(&client(fake), CLUSTER, SERVICE)
        .await
        .expect("UpdateService")
}

/// What every call about the service must name.
pub fn assert_names_the_service(fake: &FakeEcs, op: &str) {
    for body in fake.requests(op) {
        assert_eq!(body["cluster"], CLUSTER, "{op}: {body}");
        let service = body.get("service").or(body.get("serviceName"));
        if let Some(service) = service {
            assert_eq!(service, SERVICE, "{op}: {body}");
        }
    }
}

/// Deployments never move on by themselves: the hook decides.
pub fn stalled() -> Model {
    let (mut m, _) = prod_web();
    m.service(CLUSTER, SERVICE).auto_rollout = false;
    m
}

pub fn describe_polls(fake: &FakeEcs) -> usize {
    fake.count("DescribeServices")
}
