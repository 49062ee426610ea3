//! Apply's ECS part: force a deployment (or take the one `follow` adopted),
//! follow it when asked, and turn the outcome (success or failure) into the
//! state that tells what happened.

use super::attr;
use super::follow::Adopted;
use super::{ecs_diagnostic, plan};
use crate::diag::Diagnostic;
use crate::ecs::{self, DeploymentOutcome, EcsError, PollPolicy, StartedDeployment};
use crate::value::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long an interrupted apply still waits for ECS to answer UpdateService.
const UPDATE_GRACE: Duration = Duration::from_secs(10);

/// What a service is and how apply should treat it, from the planned state.
pub struct Target<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    /// `None`: do not wait for the rollout.
    pub wait: Option<Duration>,
}

/// The deployment outputs to record, and whether the rollout went wrong.
pub struct Recorded {
    pub outputs: Vec<(&'static str, Value)>,
    pub error: Option<Diagnostic>,
    pub deployment_id: String,
    /// What the completed rollout left running; `None` unless followed to completion.
    pub outcome: Option<DeploymentOutcome>,
}

/// Forces a new deployment, or takes `adopted`, and, when waiting, follows
/// it. `Err` means nothing was started (the state stays as it was); a started
/// or adopted deployment always comes back as `Ok`, with the failure, if any,
/// in `Recorded::error`: the same handling for both.
pub async fn deploy(
    client: &aws_sdk_ecs::Client,
    t: &Target<'_>,
    cancel: &CancellationToken,
    poll: PollPolicy,
    adopted: Option<Adopted>,
) -> Result<Recorded, Diagnostic> {
    let started = match adopted {
        Some(a) => {
            tracing::info!(
                cluster = t.cluster,
                service = t.service,
                deployment_id = %a.started.deployment_id,
                why = %a.why,
                "following the ECS deployment already rolling out the digest instead of forcing \
                 another"
            );
            a.started
        }
        None => {
            let update = ecs::force_new_deployment(client, t.cluster, t.service);
            tokio::pin!(update);
            // Interrupted mid-call, ECS may already have started the deployment: give it
            // a moment to say so, so the state records it (the wait below then stops at once).
            let answer = tokio::select! {
                r = &mut update => r,
                _ = cancel.cancelled() => match tokio::time::timeout(UPDATE_GRACE, update).await {
                    Ok(r) => r,
                    Err(_) => return Err(Diagnostic::error(
                        "ECS Deployment Cancelled",
                        format!(
                            "Interrupted, and ECS did not answer UpdateService within {}s; look \
                             at the service's deployments to see whether one started.",
                            UPDATE_GRACE.as_secs()
                        ),
                    )),
                },
            };
            answer.map_err(|e| {
                ecs_diagnostic("ECS Deployment Not Started", t.cluster, t.service, e)
            })?
        }
    };
    let Some(timeout) = t.wait else {
        return Ok(not_waited(client, t, started).await);
    };
    let followed = ecs::wait_for_deployment(
        client,
        t.cluster,
        t.service,
        &started.deployment_id,
        timeout,
        cancel.clone(),
        poll,
    )
    .await;
    Ok(match followed {
        Ok(outcome) => Recorded {
            deployment_id: outcome.deployment_id.clone(),
            outputs: completed(outcome.clone()),
            error: None,
            outcome: Some(outcome),
        },
        Err(e) => failed(t, started, e),
    })
}

fn completed(o: DeploymentOutcome) -> Vec<(&'static str, Value)> {
    vec![
        (attr::deployment_id, Value::string(o.deployment_id)),
        // Services without rollout states (older ECS) report none; COMPLETED is what the wait proved.
        (
            attr::rollout_state,
            Value::string(o.rollout_state.unwrap_or_else(|| "COMPLETED".into())),
        ),
        (
            attr::task_definition_arn,
            Value::opt_string(o.task_definition_arn),
        ),
        (attr::running_count, Value::int(o.running_count.into())),
        (
            attr::running_image_digests,
            Value::string_list(o.running_image_digests),
        ),
    ]
}

/// Without waiting: what DescribeServices says right after UpdateService.
/// Running image digests are not looked at (the new tasks have not started).
async fn not_waited(
    client: &aws_sdk_ecs::Client,
    t: &Target<'_>,
    started: StartedDeployment,
) -> Recorded {
    let described = ecs::describe(client, t.cluster, t.service).await;
    let (rollout_state, running_count) = match &described {
        Ok(info)
            if info.primary_deployment_id.as_deref() == Some(started.deployment_id.as_str()) =>
        {
            (
                Value::opt_string(info.primary_rollout_state.clone()),
                Value::int(info.running_count.into()),
            )
        }
        Ok(info) => (Value::Null, Value::int(info.running_count.into())),
        Err(e) => {
            tracing::warn!(error = %e, "could not describe the service after forcing a deployment");
            (Value::Null, Value::Null)
        }
    };
    Recorded {
        deployment_id: started.deployment_id.clone(),
        outputs: vec![
            (attr::deployment_id, Value::string(started.deployment_id)),
            (attr::rollout_state, rollout_state),
            (
                attr::task_definition_arn,
                Value::opt_string(started.task_definition_arn),
            ),
            (attr::running_count, running_count),
            (attr::running_image_digests, Value::Null),
        ],
        error: None,
        outcome: None,
    }
}

/// A started deployment that did not complete: the state records it (with the
/// rollout state it ended in) and the diagnostic explains it.
fn failed(t: &Target<'_>, started: StartedDeployment, e: EcsError) -> Recorded {
    let rollout_state = match &e {
        EcsError::DeploymentFailed { .. } => "FAILED",
        // The deployment goes on in ECS; we only stopped watching.
        _ => "IN_PROGRESS",
    };
    let summary = match &e {
        EcsError::DeploymentFailed { .. } => "ECS Deployment Failed",
        EcsError::Timeout { .. } => "ECS Deployment Timed Out",
        EcsError::Cancelled { .. } => "ECS Deployment Wait Cancelled",
        _ => "ECS Deployment Not Followed",
    };
    let mut diag = ecs_diagnostic(summary, t.cluster, t.service, e);
    diag.detail.push_str(
        "\n\nThe state records this deployment; the next apply starts a new one (after a failed create, \
         Terraform replaces the tainted resource; after a failed update, stevedore plans a new deployment).",
    );
    Recorded {
        deployment_id: started.deployment_id.clone(),
        outputs: vec![
            (attr::deployment_id, Value::string(started.deployment_id)),
            (attr::rollout_state, Value::string(rollout_state)),
            (
                attr::task_definition_arn,
                Value::opt_string(started.task_definition_arn),
            ),
            (attr::running_count, Value::Null),
            (attr::running_image_digests, Value::Null),
        ],
        error: Some(diag),
        outcome: None,
    }
}

/// Private state for what was recorded: the failure marker, or nothing.
pub fn private_for(r: &Recorded) -> Vec<u8> {
    match r.error {
        Some(_) => plan::failed_marker(&r.deployment_id),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::FailureKind;

    fn target() -> Target<'static> {
        Target {
            cluster: "prod",
            service: "web",
            wait: Some(Duration::from_secs(60)),
        }
    }

    fn started() -> StartedDeployment {
        StartedDeployment {
            deployment_id: "ecs-svc/7".into(),
            task_definition_arn: Some("arn:td/web:4".into()),
            created_at: None,
        }
    }

    fn output<'a>(r: &'a Recorded, name: &str) -> &'a Value {
        &r.outputs.iter().find(|(n, _)| *n == name).expect(name).1
    }

    #[test]
    fn failures_record_the_started_deployment_and_its_state() {
        let cases = [
            (
                EcsError::DeploymentFailed {
                    deployment_id: "ecs-svc/7".into(),
                    kind: FailureKind::RolledBack,
                    reason: "circuit breaker".into(),
                    stopped_tasks: vec![],
                    events: vec!["service web rolled back".into()],
                    hint: None,
                },
                "FAILED",
                "ECS Deployment Failed",
            ),
            (
                EcsError::Timeout {
                    deployment_id: "ecs-svc/7".into(),
                    waited: Duration::from_secs(2),
                    last_state: "1 of 2 running".into(),
                },
                "IN_PROGRESS",
                "ECS Deployment Timed Out",
            ),
            (
                EcsError::Cancelled {
                    deployment_id: "ecs-svc/7".into(),
                },
                "IN_PROGRESS",
                "ECS Deployment Wait Cancelled",
            ),
        ];
        for (err, state, summary) in cases {
            let explanation = err.to_string();
            let r = failed(&target(), started(), err);
            assert_eq!(output(&r, attr::deployment_id), &Value::string("ecs-svc/7"));
            assert_eq!(
                output(&r, attr::rollout_state),
                &Value::string(state),
                "{summary}"
            );
            assert_eq!(
                output(&r, attr::task_definition_arn),
                &Value::string("arn:td/web:4")
            );
            assert_eq!(output(&r, attr::running_count), &Value::Null);
            let diag = r.error.as_ref().expect("a failure is an error");
            assert_eq!(diag.summary, summary);
            assert!(diag.detail.starts_with(&explanation), "{}", diag.detail);
            assert!(plan::has_failed_marker(&private_for(&r)), "{summary}");
        }
    }

    #[test]
    fn completed_rollouts_record_every_output_and_no_marker() {
        let outcome = DeploymentOutcome {
            deployment_id: "ecs-svc/7".into(),
            rollout_state: None,
            task_definition_arn: Some("arn:td/web:4".into()),
            running_count: 2,
            running_image_digests: vec!["sha256:aa".into()],
            deployment_tasks: vec![],
        };
        let r = Recorded {
            deployment_id: "ecs-svc/7".into(),
            outputs: completed(outcome),
            error: None,
            outcome: None,
        };
        assert_eq!(output(&r, attr::rollout_state), &Value::string("COMPLETED"));
        assert_eq!(output(&r, attr::running_count), &Value::int(2));
        assert_eq!(
            output(&r, attr::running_image_digests),
            &Value::string_list(["sha256:aa"])
        );
        assert!(private_for(&r).is_empty());
    }
}
