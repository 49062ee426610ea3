//! `stevedore::ecs` against a scripted fake ECS endpoint: the hostile cases a
//! real deployment produces (platform pull failures, circuit-breaker rollback,
//! throttling, services deleted out of band, timeouts, cancellation).

#[path = "ecs_fake/json.rs"]
mod json;
#[path = "ecs_fake/server.rs"]
mod server;

use std::time::{Duration, Instant};

use aws_sdk_ecs::config::{retry::RetryConfig, BehaviorVersion, Credentials, Region};
use serde_json::json;
use stevedore::ecs::{self, EcsError, FailureKind, PollPolicy, PLATFORM_HINT};
use tokio_util::sync::CancellationToken;

use json::*;
use server::{aws_error, FakeEcs};

/// A client with the SDK's own retries off, so the tests see what our code does.
fn client(fake: &FakeEcs) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&fake.url)
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

fn fast() -> PollPolicy {
    PollPolicy {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(40),
        factor: 2.0,
        stopped_task_limit: 3,
    }
}

async fn wait(
    fake: &FakeEcs,
    timeout: Duration,
    cancel: CancellationToken,
) -> Result<ecs::DeploymentOutcome, EcsError> {
    ecs::wait_for_deployment(
        &client(fake),
        CLUSTER,
        SERVICE,
        NEW,
        timeout,
        cancel,
        fast(),
    )
    .await
}

#[tokio::test]
async fn failed_rollout_explains_the_platform_pull_error_and_hints() {
    let t = now();
    let mut polls = 0;
    let fake = FakeEcs::start(move |op, body| match op {
        "UpdateService" => ok(updated(rolling(t))),
        "DescribeServices" => {
            polls += 1;
            if polls < 3 {
                return ok(described(rolling(t)));
            }
            let mut failed = deployment(NEW, "PRIMARY", Some("FAILED"), 0, t);
            failed["rolloutStateReason"] = json!("ECS deployment circuit breaker: tasks failed to start.");
            ok(described(service(
                vec![failed, deployment(OLD, "ACTIVE", Some("COMPLETED"), 1, t - 600.0)],
                &["(service web) (deployment ecs-svc/2222) deployment failed: tasks failed to start.", "(service web) has started 1 tasks: (task a1)."],
            )))
        }
        "ListTasks" if is_stopped_query(body) => ok(task_list(&["arn:aws:ecs:us-east-1:1:task/prod/a1", "arn:aws:ecs:us-east-1:1:task/prod/a2"])),
        "ListTasks" => ok(task_list(&[])),
        "DescribeTasks" => ok(json!({ "tasks": [
            stopped_task("arn:aws:ecs:us-east-1:1:task/prod/a1", NEW, PLATFORM_REASON),
            stopped_task("arn:aws:ecs:us-east-1:1:task/prod/a2", NEW, PLATFORM_REASON),
        ], "failures": [] })),
        other => aws_error("UnknownOperationException", other),
    })
    .await;

    let started = ecs::force_new_deployment(&client(&fake), CLUSTER, SERVICE)
        .await
        .unwrap();
    assert_eq!(started.deployment_id, NEW);
    assert_eq!(started.task_definition_arn.as_deref(), Some(TASK_DEF));
    assert!(started.created_at.is_some());

    let err = wait(&fake, Duration::from_secs(10), CancellationToken::new())
        .await
        .unwrap_err();
    let text = err.to_string();
    let EcsError::DeploymentFailed {
        deployment_id,
        kind,
        stopped_tasks,
        events,
        hint,
        ..
    } = err
    else {
        panic!("expected DeploymentFailed, got {text}");
    };
    assert_eq!(
        (deployment_id.as_str(), kind),
        (NEW, FailureKind::RolloutFailed)
    );
    assert!(text.starts_with("ECS deployment ecs-svc/2222 failed: ECS deployment circuit breaker: tasks failed to start."), "{text}");
    assert_eq!(stopped_tasks.len(), 2);
    assert_eq!(
        stopped_tasks[0].stopped_reason.as_deref(),
        Some(PLATFORM_REASON)
    );
    assert!(
        stopped_tasks[0].container_reasons.is_empty(),
        "same as the task's reason: not repeated"
    );
    assert!(
        events[0].contains("deployment failed"),
        "newest event first: {events:?}"
    );
    assert_eq!(
        hint.as_deref(),
        Some(PLATFORM_HINT.replace("{platform}", "linux/amd64").as_str())
    );
    assert!(
        text.contains("descriptor matching platform 'linux/amd64'"),
        "{text}"
    );
    assert!(
        text.contains("stevedore_image_manifest") && text.contains("platforms = [\"linux/amd64\"]"),
        "{text}"
    );
}

#[tokio::test]
async fn circuit_breaker_rollback_fails_although_the_service_is_steady() {
    let t = now();
    let mut polls = 0;
    let fake = FakeEcs::start(move |op, body| match op {
        "DescribeServices" => {
            polls += 1;
            if polls < 2 {
                return ok(described(rolling(t)));
            }
            // Ours is gone; the old deployment is PRIMARY and COMPLETED again.
            ok(described(service(
                vec![deployment(OLD, "PRIMARY", Some("COMPLETED"), 1, t - 600.0)],
                &[
                    "(service web) has reached a steady state.",
                    "(service web) rolling back to deployment ecs-svc/1111.",
                ],
            )))
        }
        "ListTasks" if is_stopped_query(body) => ok(task_list(&[])),
        other => aws_error("UnknownOperationException", other),
    })
    .await;

    let err = wait(&fake, Duration::from_secs(10), CancellationToken::new())
        .await
        .unwrap_err();
    match &err {
        EcsError::DeploymentFailed {
            kind: FailureKind::RolledBack,
            reason,
            events,
            ..
        } => {
            assert!(reason.contains(OLD), "{reason}");
            assert_eq!(events.len(), 2);
        }
        other => panic!("expected a rollback failure, got {other}"),
    }
    assert!(err.to_string().contains("rolled back"), "{err}");
}

#[tokio::test]
async fn throttled_calls_are_retried_not_fatal() {
    let t = now();
    let (mut updates, mut polls) = (0, 0);
    let fake = FakeEcs::start(move |op, body| match op {
        "UpdateService" => {
            updates += 1;
            if updates <= 2 {
                return aws_error("ThrottlingException", "Rate exceeded");
            }
            ok(updated(rolling(t)))
        }
        "DescribeServices" => {
            polls += 1;
            match polls {
                1..=3 => aws_error("ThrottlingException", "Rate exceeded"),
                4 => ok(described(rolling(t))),
                _ => ok(described(service(vec![deployment(NEW, "PRIMARY", Some("COMPLETED"), 1, t)], &[]))),
            }
        }
        "ListTasks" if is_stopped_query(body) => ok(task_list(&[])),
        "ListTasks" => ok(task_list(&["arn:t/r1", "arn:t/r2"])),
        "DescribeTasks" => ok(json!({ "tasks": [
            running_task("arn:t/r1", "sha256:bbbb"), running_task("arn:t/r2", "sha256:aaaa"), running_task("arn:t/r3", "sha256:bbbb"),
        ] })),
        other => aws_error("UnknownOperationException", other),
    })
    .await;

    let started = ecs::force_new_deployment(&client(&fake), CLUSTER, SERVICE)
        .await
        .unwrap();
    assert_eq!(started.deployment_id, NEW);
    let outcome = wait(&fake, Duration::from_secs(10), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome.deployment_id, NEW);
    assert_eq!(outcome.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(outcome.running_count, 1);
    assert_eq!(outcome.task_definition_arn.as_deref(), Some(TASK_DEF));
    assert_eq!(
        outcome.running_image_digests,
        vec!["sha256:aaaa", "sha256:bbbb"]
    );
    assert_eq!(fake.count("UpdateService"), 3);
    assert_eq!(fake.count("DescribeServices"), 5);
}

#[tokio::test]
async fn a_service_deleted_out_of_band_is_not_found() {
    let fake = FakeEcs::start(|op, body| match (op, body["cluster"].as_str()) {
        ("UpdateService", _) => aws_error("ServiceNotFoundException", "Service not found."),
        ("DescribeServices", Some("gone-cluster")) => {
            aws_error("ClusterNotFoundException", "Cluster not found.")
        }
        ("DescribeServices", _) if body["services"][0] == "inactive" => {
            let mut svc = service(vec![], &[]);
            svc["status"] = json!("INACTIVE");
            ok(described(svc))
        }
        ("DescribeServices", _) => {
            ok(json!({ "services": [], "failures": [{ "arn": "arn:x", "reason": "MISSING" }] }))
        }
        (other, _) => aws_error("UnknownOperationException", other),
    })
    .await;
    let c = client(&fake);

    let err = ecs::force_new_deployment(&c, CLUSTER, SERVICE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EcsError::ServiceNotFound { .. }) && err.is_not_found(),
        "{err}"
    );
    let err = wait(&fake, Duration::from_secs(5), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, EcsError::ServiceNotFound { .. }), "{err}");
    let err = ecs::describe(&c, CLUSTER, "inactive").await.unwrap_err();
    assert!(matches!(err, EcsError::ServiceNotFound { .. }), "{err}");
    let err = ecs::describe(&c, "gone-cluster", SERVICE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EcsError::ClusterNotFound { .. }) && err.is_not_found(),
        "{err}"
    );
}

#[tokio::test]
async fn a_deployment_that_never_finishes_times_out_with_its_last_state() {
    let fake = FakeEcs::start(forever_in_progress()).await;
    let began = Instant::now();
    let err = wait(&fake, Duration::from_millis(300), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(began.elapsed() < Duration::from_secs(3));
    match &err {
        EcsError::Timeout {
            deployment_id,
            waited,
            last_state,
        } => {
            assert_eq!(deployment_id, NEW);
            assert!(*waited >= Duration::from_millis(300));
            assert!(
                last_state.contains("IN_PROGRESS: 0 of 1 tasks running"),
                "{last_state}"
            );
        }
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(
        fake.count("DescribeServices") >= 3,
        "polled: {:?}",
        fake.calls()
    );
}

#[tokio::test]
async fn cancellation_stops_the_wait_promptly() {
    let fake = FakeEcs::start(forever_in_progress()).await;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        trigger.cancel();
    });
    let began = Instant::now();
    let err = wait(&fake, Duration::from_secs(60), cancel)
        .await
        .unwrap_err();
    assert!(matches!(err, EcsError::Cancelled { .. }), "{err}");
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn tasks_that_keep_stopping_fail_a_deployment_without_rollout_state() {
    let t = now();
    let fake = FakeEcs::start(move |op, body| match op {
        "DescribeServices" => ok(described(service(
            vec![
                deployment(NEW, "PRIMARY", None, 0, t),
                deployment(OLD, "ACTIVE", None, 1, t - 600.0),
            ],
            &[],
        ))),
        "ListTasks" if is_stopped_query(body) => ok(task_list(&["s1", "s2", "s3", "s4"])),
        "DescribeTasks" => ok(json!({ "tasks": [
            stopped_task("s1", NEW, "Essential container in task exited"),
            stopped_task("s2", NEW, "Essential container in task exited"),
            stopped_task("s3", NEW, "Essential container in task exited"),
            stopped_task("s4", OLD, "Scaling activity initiated by deployment"),
        ] })),
        other => aws_error("UnknownOperationException", other),
    })
    .await;
    let err = wait(&fake, Duration::from_secs(10), CancellationToken::new())
        .await
        .unwrap_err();
    match err {
        EcsError::DeploymentFailed {
            kind: FailureKind::TasksKeepStopping,
            stopped_tasks,
            hint,
            ..
        } => {
            assert_eq!(
                stopped_tasks.len(),
                3,
                "only our deployment's tasks: {stopped_tasks:?}"
            );
            assert_eq!(hint, None);
        }
        other => panic!("expected TasksKeepStopping, got {other}"),
    }
}

/// Through the provider's own client factory (`AwsSettings` + env credentials),
/// and the fallback for services that report no rolloutState (moto, old ECS).
#[tokio::test]
async fn without_rollout_state_a_sole_running_primary_is_done() {
    let t = now();
    let mut polls = 0;
    let fake = FakeEcs::start(move |op, _| match op {
        "DescribeServices" => {
            polls += 1;
            let mut deps = vec![deployment(NEW, "PRIMARY", None, 1, t)];
            if polls < 3 {
                deps.push(deployment(OLD, "ACTIVE", None, 1, t - 600.0));
            }
            ok(described(service(deps, &[])))
        }
        "ListTasks" => ok(task_list(&[])),
        other => aws_error("UnknownOperationException", other),
    })
    .await;
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    let settings = stevedore::aws::AwsSettings {
        region: Some("us-east-1".into()),
        ecs_endpoint: Some(fake.url.clone()),
        ..Default::default()
    };
    let c = stevedore::aws::ecs_client(&settings).await;
    let outcome = ecs::wait_for_deployment(
        &c,
        CLUSTER,
        SERVICE,
        NEW,
        Duration::from_secs(10),
        CancellationToken::new(),
        fast(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.rollout_state, None);
    assert_eq!(outcome.running_count, 1);
    assert!(outcome.running_image_digests.is_empty());
    assert_eq!(fake.count("DescribeServices"), 3);
}

#[tokio::test]
async fn describe_and_task_definition_images() {
    let t = now();
    let fake = FakeEcs::start(move |op, body| match op {
        "DescribeServices" => ok(described(rolling(t))),
        "DescribeTaskDefinition" if body["taskDefinition"] == "arm" => ok(json!({ "taskDefinition": {
            "taskDefinitionArn": "arn:td/arm:1",
            "containerDefinitions": [{ "name": "app", "image": "1.dkr.ecr/app:v1" }, { "name": "log", "image": "fluent-bit:3" }],
            "runtimePlatform": { "operatingSystemFamily": "LINUX", "cpuArchitecture": "ARM64" },
        } })),
        "DescribeTaskDefinition" => ok(json!({ "taskDefinition": {
            "containerDefinitions": [{ "name": "app", "image": "app:v1" }],
        } })),
        other => aws_error("UnknownOperationException", other),
    })
    .await;
    let c = client(&fake);

    let info = ecs::describe(&c, CLUSTER, SERVICE).await.unwrap();
    assert_eq!(info.status, "ACTIVE");
    assert_eq!((info.desired_count, info.running_count), (1, 1));
    assert_eq!(info.task_definition_arn.as_deref(), Some(TASK_DEF));
    assert_eq!(info.primary_deployment_id.as_deref(), Some(NEW));
    assert_eq!(info.primary_rollout_state.as_deref(), Some("IN_PROGRESS"));
    assert!(info.service_arn.ends_with("service/prod/web"));

    let arm = ecs::task_definition_images(&c, "arm").await.unwrap();
    assert_eq!(
        arm.images,
        vec![
            ("app".into(), "1.dkr.ecr/app:v1".into()),
            ("log".into(), "fluent-bit:3".into())
        ]
    );
    assert_eq!(arm.runtime_platform, ("LINUX".into(), "ARM64".into()));
    assert_eq!(
        ecs::runtime_platform_to_oci(&arm.runtime_platform.0, &arm.runtime_platform.1),
        "linux/arm64"
    );
    let plain = ecs::task_definition_images(&c, "plain").await.unwrap();
    assert_eq!(plain.runtime_platform, ("LINUX".into(), "X86_64".into()));
}

/// With the deployment circuit breaker on, stopped tasks are ECS's call: it
/// fails or rolls back the deployment itself, so we keep waiting.
#[tokio::test]
async fn stopped_tasks_are_left_to_an_enabled_circuit_breaker() {
    let t = now();
    let fake = FakeEcs::start(move |op, _| match op {
        "DescribeServices" => {
            let mut svc = rolling(t);
            svc["deploymentConfiguration"] =
                json!({ "deploymentCircuitBreaker": { "enable": true, "rollback": true } });
            ok(described(svc))
        }
        "ListTasks" => ok(task_list(&["s1", "s2", "s3"])),
        "DescribeTasks" => ok(json!({ "tasks": [
            stopped_task("s1", NEW, "Essential container in task exited"),
            stopped_task("s2", NEW, "Essential container in task exited"),
            stopped_task("s3", NEW, "Essential container in task exited"),
        ] })),
        other => aws_error("UnknownOperationException", other),
    })
    .await;
    let err = wait(&fake, Duration::from_millis(200), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, EcsError::Timeout { .. }), "{err}");
    assert_eq!(fake.count("ListTasks"), 0, "{:?}", fake.calls());
}
