//! Deployments that do not complete: failed, rolled back, tasks that keep
//! stopping, never finishing, cancelled. Each names the calls it needs.

use std::time::{Duration, Instant};

use serde_json::Value;
use stevedore::ecs::{EcsError, FailureKind, PLATFORM_HINT};
use tokio_util::sync::CancellationToken;

use crate::model::now;
use crate::server::FakeEcs;
use crate::*;

#[tokio::test]
async fn failed_rollout_explains_the_platform_pull_error_and_hints() {
    let mut polls = 0;
    let mut stopped: Vec<String> = Vec::new();
    let fake = FakeEcs::with_hook(stalled(), move |m, op, _| {
        if op == "DescribeServices" {
            polls += 1;
            if polls == 3 {
                let svc = m.service(CLUSTER, SERVICE);
                let id = svc.deployments[0].id.clone();
                svc.deployments[0].rollout_state = Some("FAILED".into());
                svc.deployments[0].rollout_reason =
                    Some("ECS deployment circuit breaker: tasks failed to start.".into());
                svc.events.insert(0, (now(), format!("(service web) (deployment {id}) deployment failed: tasks failed to start.")));
                for _ in 0..2 {
                    stopped.push(m.stopped_task(CLUSTER, SERVICE, &id, PLATFORM_REASON));
                }
            }
        }
        None
    })
    .await;

    let started = force(&fake).await;
    let update = &fake.requests("UpdateService")[0];
    assert_eq!(update["forceNewDeployment"], true, "{update}");
    assert_names_the_service(&fake, "UpdateService");
    assert_eq!(
        started.task_definition_arn.as_deref(),
        Some(
            fake.model(|m| m.service(CLUSTER, SERVICE).task_definition.clone())
                .as_str()
        )
    );
    assert!(started.created_at.is_some());

    let err = wait(
        &fake,
        &started.deployment_id,
        Duration::from_secs(10),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(describe_polls(&fake), 3, "{:?}", fake.calls());
    // One look for stopped tasks per poll (no circuit breaker), the last one explains.
    let list = fake.requests("ListTasks");
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list.iter().all(|b| b["desiredStatus"] == "STOPPED"),
        "{list:?}"
    );
    assert_names_the_service(&fake, "ListTasks");
    let described = fake.requests("DescribeTasks");
    assert_eq!(described.len(), 1);
    assert_eq!(
        described[0]["tasks"].as_array().unwrap().len(),
        2,
        "only the listed tasks"
    );

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
        (started.deployment_id.as_str(), FailureKind::RolloutFailed)
    );
    assert!(
        text.contains("failed: ECS deployment circuit breaker: tasks failed to start."),
        "{text}"
    );
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
        text.contains("stevedore_image_manifest") && text.contains("platforms = [\"linux/amd64\"]"),
        "{text}"
    );
}

#[tokio::test]
async fn circuit_breaker_rollback_fails_although_the_service_is_steady() {
    let mut polls = 0;
    let fake = FakeEcs::with_hook(stalled(), move |m, op, _| {
        if op == "DescribeServices" {
            polls += 1;
            if polls == 2 {
                // Ours is gone; the old deployment is PRIMARY and COMPLETED again.
                let svc = m.service(CLUSTER, SERVICE);
                svc.deployments.remove(0);
                svc.deployments[0].status = "PRIMARY".into();
                let old = svc.deployments[0].id.clone();
                svc.events.insert(
                    0,
                    (
                        now(),
                        format!("(service web) rolling back to deployment {old}."),
                    ),
                );
                svc.events.insert(
                    0,
                    (now(), "(service web) has reached a steady state.".into()),
                );
            }
        }
        None
    })
    .await;
    let old = fake.model(|m| m.service(CLUSTER, SERVICE).deployments[0].id.clone());
    let started = force(&fake).await;
    let err = wait(
        &fake,
        &started.deployment_id,
        Duration::from_secs(10),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(describe_polls(&fake), 2, "{:?}", fake.calls());
    match &err {
        EcsError::DeploymentFailed {
            kind: FailureKind::RolledBack,
            reason,
            events,
            ..
        } => {
            assert!(reason.contains(&old), "{reason}");
            assert!(events[1].contains("rolling back"), "{events:?}");
        }
        other => panic!("expected a rollback failure, got {other}"),
    }
    assert!(err.to_string().contains("rolled back"), "{err}");
}

#[tokio::test]
async fn a_deployment_that_never_finishes_times_out_with_its_last_state() {
    let fake = FakeEcs::start(stalled()).await;
    let started = force(&fake).await;
    // A wait that ignored its 300 ms timeout fails here instead of hanging the run.
    let waiting = wait(
        &fake,
        &started.deployment_id,
        Duration::from_millis(300),
        CancellationToken::new(),
    );
    let err = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the wait ran 30 s past its 300 ms timeout")
        .unwrap_err();
    match &err {
        EcsError::Timeout {
            deployment_id,
            waited,
            last_state,
        } => {
            assert_eq!(deployment_id, &started.deployment_id);
            assert!(*waited >= Duration::from_millis(300));
            assert!(
                last_state.contains("IN_PROGRESS: 0 of 1 tasks running"),
                "{last_state}"
            );
        }
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(describe_polls(&fake) >= 3, "polled: {:?}", fake.calls());
    assert_names_the_service(&fake, "DescribeServices");
}

#[tokio::test]
async fn cancellation_stops_the_wait_promptly() {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut polls = 0;
    let cancelled = std::sync::Arc::new(std::sync::OnceLock::new());
    let seen = cancelled.clone();
    // Cancelled from inside the second poll: the wait must not poll a third time.
    let fake = FakeEcs::with_hook(stalled(), move |_, op, _| {
        if op == "DescribeServices" {
            polls += 1;
            if polls == 2 {
                trigger.cancel();
                let _ = seen.set(Instant::now());
            }
        }
        None
    })
    .await;
    let started = force(&fake).await;
    // The wait's own timeout is a minute: one that missed the cancel fails here first.
    let waiting = wait(
        &fake,
        &started.deployment_id,
        Duration::from_secs(60),
        cancel,
    );
    let err = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the wait went on 30 s after it was cancelled")
        .unwrap_err();
    assert!(matches!(err, EcsError::Cancelled { .. }), "{err}");
    // Measured from the cancel, not from before the set-up.
    let after = cancelled
        .get()
        .expect("cancelled in the second poll")
        .elapsed();
    assert!(
        after < Duration::from_secs(5),
        "ended {after:?} after the cancel"
    );
    assert_eq!(describe_polls(&fake), 2);
}

#[tokio::test]
async fn tasks_that_keep_stopping_fail_a_deployment_without_rollout_state() {
    let mut m = stalled();
    m.service(CLUSTER, SERVICE).rollout_states = false;
    let old = m.service(CLUSTER, SERVICE).deployments[0].id.clone();
    let fake = FakeEcs::start(m).await;
    let started = force(&fake).await;
    fake.model(|m| {
        for _ in 0..3 {
            m.stopped_task(
                CLUSTER,
                SERVICE,
                &started.deployment_id,
                "Essential container in task exited",
            );
        }
        m.stopped_task(
            CLUSTER,
            SERVICE,
            &old,
            "Scaling activity initiated by deployment",
        );
    });
    let err = wait(
        &fake,
        &started.deployment_id,
        Duration::from_secs(10),
        CancellationToken::new(),
    )
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
    let stopped_queries: Vec<Value> = fake.requests("ListTasks");
    assert!(
        !stopped_queries.is_empty()
            && stopped_queries
                .iter()
                .all(|b| b["desiredStatus"] == "STOPPED"),
        "{stopped_queries:?}"
    );
    assert_names_the_service(&fake, "ListTasks");
}

#[tokio::test]
async fn stopped_tasks_are_left_to_an_enabled_circuit_breaker() {
    let mut m = stalled();
    m.service(CLUSTER, SERVICE).circuit_breaker = true;
    let fake = FakeEcs::start(m).await;
    let started = force(&fake).await;
    fake.model(|m| {
        for _ in 0..3 {
            m.stopped_task(
                CLUSTER,
                SERVICE,
                &started.deployment_id,
                "Essential container in task exited",
            );
        }
    });
    let err = wait(
        &fake,
        &started.deployment_id,
        Duration::from_millis(200),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EcsError::Timeout { .. }), "{err}");
    assert!(describe_polls(&fake) >= 2, "{:?}", fake.calls());
    assert_eq!(fake.count("ListTasks"), 0, "{:?}", fake.calls());
}
