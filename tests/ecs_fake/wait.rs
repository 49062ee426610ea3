//! Forcing a deployment and following it to the end: what ECS answers on
//! the way, and the calls our code makes to find out.

use std::time::Duration;

use serde_json::{json, Value};
use stevedore::ecs::{self, EcsError};
use tokio_util::sync::CancellationToken;

use crate::server::{aws_error, FakeEcs};
use crate::*;

#[tokio::test]
async fn throttled_calls_are_retried_not_fatal() {
    let (mut m, _) = prod_web();
    // Two containers with different images: the digests come back sorted, once each.
    let def = m.register(
        "web",
        &[
            ("app", &format!("{IMAGE_REPO}@{DIGEST_B}")),
            ("sidecar", &format!("{IMAGE_REPO}@{DIGEST_A}")),
        ],
        None,
    );
    m.service(CLUSTER, SERVICE).task_definition = def;
    m.service(CLUSTER, SERVICE).desired = 2;
    let (mut updates, mut polls) = (0, 0);
    let fake = FakeEcs::with_hook(m, move |_, op, _| match op {
        "UpdateService" => {
            updates += 1;
            (updates <= 2).then(|| aws_error("ThrottlingException", "Rate exceeded"))
        }
        "DescribeServices" => {
            polls += 1;
            (polls <= 3).then(|| aws_error("ThrottlingException", "Rate exceeded"))
        }
        _ => None,
    })
    .await;

    let started = force(&fake).await;
    let outcome = wait(
        &fake,
        &started.deployment_id,
        Duration::from_secs(10),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.deployment_id, started.deployment_id);
    assert_eq!(outcome.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(outcome.running_count, 2);
    assert_eq!(outcome.task_definition_arn, started.task_definition_arn);
    assert_eq!(outcome.running_image_digests, vec![DIGEST_A, DIGEST_B]);
    assert_eq!(fake.count("UpdateService"), 3);
    // 3 throttled, then the model's rollout: tasks running, then COMPLETED.
    assert_eq!(describe_polls(&fake), 5);
    assert_eq!(
        fake.model(|m| m.deployments_started),
        1,
        "retries start no extra deployment"
    );
}

#[tokio::test]
async fn a_service_deleted_out_of_band_is_not_found() {
    let (mut m, id) = prod_web();
    let def = m.service(CLUSTER, SERVICE).task_definition.clone();
    m.add_service(CLUSTER, "inactive", &def, 0);
    m.service(CLUSTER, "inactive").status = "INACTIVE".into();
    let fake = FakeEcs::start(m).await;
    let c = client(&fake);

    // ServiceNotActiveException and ServiceNotFoundException alike.
    for service in ["inactive", "missing"] {
        let err = ecs::force_new_deployment(&c, CLUSTER, service)
            .await
            .unwrap_err();
        assert!(
            matches!(err, EcsError::ServiceNotFound { .. }) && err.is_not_found(),
            "{service}: {err}"
        );
    }
    assert_eq!(fake.model(|m| m.deployments_started), 0);
    let err = ecs::wait_for_deployment(
        &c,
        CLUSTER,
        "missing",
        &id,
        Duration::from_secs(5),
        CancellationToken::new(),
        fast(),
    )
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
    let err = ecs::force_new_deployment(&c, "gone-cluster", SERVICE)
        .await
        .unwrap_err();
    assert!(matches!(err, EcsError::ClusterNotFound { .. }), "{err}");
    let asked: Vec<Value> = fake
        .requests("UpdateService")
        .iter()
        .map(|b| b["service"].clone())
        .collect();
    assert_eq!(
        asked,
        vec![json!("inactive"), json!("missing"), json!(SERVICE)]
    );
}

/// Through the provider's own client factory (`AwsSettings` + env credentials),
/// and the fallback for services that report no rolloutState (moto, old ECS).
#[tokio::test]
async fn without_rollout_state_a_sole_running_primary_is_done() {
    let (mut m, _) = prod_web();
    m.service(CLUSTER, SERVICE).rollout_states = false;
    m.rollout_polls = 3;
    let fake = FakeEcs::start(m).await;
    acceptance_tests::moto::export_aws_env();
    let settings = stevedore::aws::AwsSettings {
        region: Some("us-east-1".into()),
        ecs_endpoint: Some(fake.url.clone()),
        ..Default::default()
    };
    let c = stevedore::aws::ecs_client(&settings).await;
    let started = ecs::force_new_deployment(&c, CLUSTER, SERVICE)
        .await
        .unwrap();
    let outcome = ecs::wait_for_deployment(
        &c,
        CLUSTER,
        SERVICE,
        &started.deployment_id,
        Duration::from_secs(10),
        CancellationToken::new(),
        fast(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.rollout_state, None);
    assert_eq!(outcome.running_count, 1);
    assert_eq!(outcome.running_image_digests, vec![DIGEST_A]);
    // Two deployments for two polls, the old one gone at the third.
    assert_eq!(describe_polls(&fake), 3);
}

#[tokio::test]
async fn describe_and_task_definition_images() {
    let (mut m, id) = prod_web();
    m.register(
        "arm",
        &[("app", "1.dkr.ecr/app:v1"), ("log", "fluent-bit:3")],
        Some(("LINUX", "ARM64")),
    );
    m.register("plain", &[("app", "app:v1")], None);
    let fake = FakeEcs::start(m).await;
    let c = client(&fake);

    let info = ecs::describe(&c, CLUSTER, SERVICE).await.unwrap();
    assert_eq!(info.status, "ACTIVE");
    assert_eq!((info.desired_count, info.running_count), (1, 1));
    assert!(info
        .task_definition_arn
        .as_deref()
        .is_some_and(|a| a.ends_with("task-definition/web:1")));
    assert_eq!(info.primary_deployment_id.as_deref(), Some(id.as_str()));
    assert_eq!(info.primary_rollout_state.as_deref(), Some("COMPLETED"));
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
    assert_eq!(
        fake.requests("DescribeTaskDefinition")[1]["taskDefinition"],
        "plain"
    );
}

/// With the deployment circuit breaker on, stopped tasks are ECS's call: it
/// fails or rolls back the deployment itself, so we keep waiting.
/// ListTasks pages at 100: the digests of all 150 running tasks of the
/// service are read (both pages), and none of another service's tasks.
#[tokio::test]
async fn running_digests_read_every_page_of_the_service_only() {
    let (mut m, _) = prod_web();
    m.service(CLUSTER, SERVICE).desired = 150;
    let other = m.register("api", &[("api", &format!("{IMAGE_REPO}@{DIGEST_B}"))], None);
    m.add_service(CLUSTER, "api", &other, 3);
    let fake = FakeEcs::start(m).await;
    let started = force(&fake).await;
    let outcome = wait(
        &fake,
        &started.deployment_id,
        Duration::from_secs(10),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.running_count, 150);
    assert_eq!(outcome.running_image_digests, vec![DIGEST_A]);
    let pages: Vec<Value> = fake
        .requests("ListTasks")
        .into_iter()
        .filter(|b| b["desiredStatus"] == "RUNNING")
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[0]["nextToken"].is_null());
    assert_eq!(pages[1]["nextToken"], json!("page-100"));
    assert_names_the_service(&fake, "ListTasks");
    let batches: Vec<usize> = fake
        .requests("DescribeTasks")
        .iter()
        .map(|b| b["tasks"].as_array().unwrap().len())
        .collect();
    assert_eq!(batches, vec![100, 50]);
}

/// `Instant + Duration::MAX` used to panic inside the provider; any timeout
/// now waits, and the rollout completes as if it were merely long.
#[tokio::test]
async fn a_timeout_too_large_for_a_deadline_does_not_panic() {
    let (m, _) = prod_web();
    let fake = FakeEcs::start(m).await;
    let started = force(&fake).await;
    let outcome = wait(
        &fake,
        &started.deployment_id,
        Duration::MAX,
        CancellationToken::new(),
    )
    .await
    .expect("completes");
    assert_eq!(outcome.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(describe_polls(&fake), 2);
}
