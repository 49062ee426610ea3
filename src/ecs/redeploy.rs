//! Forcing a new deployment of a service and following that deployment, by
//! id, until it completes, fails, is rolled back, times out or is cancelled.

use std::time::{Duration, SystemTime};

use aws_sdk_ecs::types::DesiredStatus;
use aws_sdk_ecs::Client;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::calls::{classify, retry_throttled, Outcome, Target};
use super::error::{EcsError, FailureKind};
use super::explain::failure;
use super::progress::{judge, to_time, ServiceView, Tracked, Verdict};
use super::service::{first_service, primary_deployment};
use super::tasks::{belongs_to, running_images, service_tasks, RunningTask};

/// The deployment `UpdateService(forceNewDeployment)` started, or one
/// already under way that the caller chose to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartedDeployment {
    pub deployment_id: String,
    pub task_definition_arn: Option<String>,
    pub created_at: Option<SystemTime>,
}

/// What a completed deployment left running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentOutcome {
    pub deployment_id: String,
    /// `COMPLETED`, or `None` for services that report no rollout state.
    pub rollout_state: Option<String>,
    pub task_definition_arn: Option<String>,
    pub running_count: i32,
    /// `containers[].imageDigest` of the running tasks, sorted, deduplicated.
    pub running_image_digests: Vec<String>,
    /// The running tasks of this deployment, with the digests each reports.
    pub deployment_tasks: Vec<RunningTask>,
}

/// How often to ask ECS. Deployments take minutes; tests use milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Each pause is the previous one times this, up to `max`.
    pub factor: f64,
    /// Fail once this many tasks of the deployment have stopped (0 = never):
    /// without a circuit breaker ECS would otherwise replace them forever.
    pub stopped_task_limit: usize,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(15),
            factor: 1.5,
            stopped_task_limit: 3,
        }
    }
}

impl PollPolicy {
    fn grow(&self, interval: Duration) -> Duration {
        interval.mul_f64(self.factor.max(1.0)).min(self.max)
    }
}

/// Calls `UpdateService(forceNewDeployment = true)` and returns the PRIMARY
/// deployment of the answer: the one this call started.
pub async fn force_new_deployment(
    client: &Client,
    cluster: &str,
    service: &str,
) -> Result<StartedDeployment, EcsError> {
    let target = Target { cluster, service };
    let out = retry_throttled("UpdateService", target, || {
        client
            .update_service()
            .cluster(cluster)
            .service(service)
            .force_new_deployment(true)
            .send()
    })
    .await?;
    let Some(svc) = out.service() else {
        return Err(EcsError::UnexpectedResponse {
            operation: "UpdateService",
            what: "no service in the answer".into(),
        });
    };
    if svc.status() == Some("INACTIVE") {
        return Err(EcsError::ServiceNotFound {
            cluster: cluster.into(),
            service: service.into(),
        });
    }
    let primary = primary_deployment(svc).ok_or_else(|| EcsError::UnexpectedResponse {
        operation: "UpdateService",
        what: "the service lists no PRIMARY deployment; only the ECS deployment controller \
               (not CODE_DEPLOY or EXTERNAL) can be followed"
            .into(),
    })?;
    let started = StartedDeployment {
        deployment_id: primary.id().unwrap_or_default().to_string(),
        task_definition_arn: primary.task_definition().map(str::to_string),
        created_at: to_time(primary.created_at()),
    };
    tracing::info!(cluster, service, deployment_id = %started.deployment_id, "forced a new ECS deployment");
    Ok(started)
}

/// One poll's conclusion.
enum Step {
    Done(DeploymentOutcome),
    Pending { state: String, throttled: bool },
}

/// Polls DescribeServices until deployment `deployment_id` completes with
/// running = desired. Fails on FAILED, a circuit-breaker rollback, tasks that
/// keep stopping, the service going away, `timeout` or `cancel`.
pub async fn wait_for_deployment(
    client: &Client,
    cluster: &str,
    service: &str,
    deployment_id: &str,
    timeout: Duration,
    cancel: CancellationToken,
    poll: PollPolicy,
) -> Result<DeploymentOutcome, EcsError> {
    let target = Target { cluster, service };
    let mut tracked = Tracked {
        id: deployment_id.to_string(),
        created_at: None,
    };
    let started = Instant::now();
    let deadline = deadline_after(started, timeout);
    let cancelled = || EcsError::Cancelled {
        deployment_id: deployment_id.to_string(),
    };
    let mut interval = poll.initial;
    let mut last_state = String::from("ECS has not answered yet");
    loop {
        let step = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(cancelled()),
            _ = tokio::time::sleep_until(deadline) => None,
            step = poll_once(client, target, &mut tracked, &poll) => Some(step?),
        };
        match step {
            Some(Step::Done(outcome)) => return Ok(outcome),
            Some(Step::Pending { state, throttled }) => {
                tracing::debug!(deployment_id, state = %state, "ECS deployment not done yet");
                last_state = state;
                if throttled {
                    // Back off harder than the growth policy: ECS asked us to.
                    interval = (interval * 2).min(poll.max.max(poll.initial));
                }
            }
            None => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(EcsError::Timeout {
                deployment_id: deployment_id.into(),
                waited: now - started,
                last_state,
            });
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(cancelled()),
            _ = tokio::time::sleep(interval.min(deadline - now)) => {}
        }
        interval = poll.grow(interval);
    }
}

/// The longest wait a deadline is set for: callers bound their timeouts far
/// lower, this only keeps the arithmetic safe for any `Duration`.
const LONGEST_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// `start + timeout`, capped at [`LONGEST_WAIT`].
/// GOTCHA: `Instant + Duration` panics on overflow (e.g. a `2562047h` timeout).
fn deadline_after(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout.min(LONGEST_WAIT))
        .unwrap_or(start)
}

async fn poll_once(
    client: &Client,
    target: Target<'_>,
    tracked: &mut Tracked,
    poll: &PollPolicy,
) -> Result<Step, EcsError> {
    let answer = client
        .describe_services()
        .cluster(target.cluster)
        .services(target.service)
        .send()
        .await;
    let out = match answer {
        Ok(out) => out,
        Err(err) => {
            return match classify("DescribeServices", target, err) {
                Outcome::Retry(err) => {
                    let throttled = matches!(err, EcsError::Throttled { .. });
                    Ok(Step::Pending {
                        state: format!("last poll failed, will retry: {err}"),
                        throttled,
                    })
                }
                Outcome::Fatal(err) => Err(err),
            }
        }
    };
    let svc = first_service(&out, target)?;
    let view = ServiceView::from(svc);
    if let Some(ours) = view.deployments.iter().find(|d| d.id == tracked.id) {
        tracked.created_at = tracked.created_at.or(ours.created_at);
    }
    let task_definition = view
        .deployments
        .iter()
        .find(|d| d.id == tracked.id)
        .and_then(|d| d.task_definition.clone())
        .or_else(|| svc.task_definition().map(str::to_string));

    match judge(&view, tracked) {
        Verdict::Gone => Err(EcsError::ServiceNotFound {
            cluster: target.cluster.into(),
            service: target.service.into(),
        }),
        Verdict::Failed { kind, reason } => Err(failure(
            client,
            target,
            tracked,
            task_definition.as_deref(),
            &view,
            kind,
            reason,
        )
        .await),
        Verdict::Completed {
            rollout_state,
            task_definition_arn,
            running,
        } => {
            let (running_image_digests, deployment_tasks) =
                running_images(client, target, tracked, task_definition_arn.as_deref()).await?;
            Ok(Step::Done(DeploymentOutcome {
                deployment_id: tracked.id.clone(),
                rollout_state,
                task_definition_arn,
                running_count: running,
                running_image_digests,
                deployment_tasks,
            }))
        }
        // With the circuit breaker on, ECS itself fails or rolls back a deployment
        // whose tasks keep stopping (after more tries than our limit); stepping in
        // earlier would leave the service retrying without its rollback.
        Verdict::InProgress(state) if has_circuit_breaker(svc) => Ok(Step::Pending {
            state,
            throttled: false,
        }),
        Verdict::InProgress(state) => {
            let stopped =
                count_stopped(client, target, tracked, task_definition.as_deref(), poll).await;
            if poll.stopped_task_limit > 0 && stopped >= poll.stopped_task_limit {
                let reason = format!(
                    "{stopped} of its tasks stopped since it started; ECS keeps replacing them"
                );
                let kind = FailureKind::TasksKeepStopping;
                return Err(failure(
                    client,
                    target,
                    tracked,
                    task_definition.as_deref(),
                    &view,
                    kind,
                    reason,
                )
                .await);
            }
            Ok(Step::Pending {
                state,
                throttled: false,
            })
        }
    }
}

fn has_circuit_breaker(svc: &aws_sdk_ecs::types::Service) -> bool {
    svc.deployment_configuration()
        .and_then(|c| c.deployment_circuit_breaker())
        .is_some_and(|b| b.enable())
}

/// Stopped tasks of our deployment. A failed look is counted as none: this
/// check only shortens a doomed wait, the deadline still bounds it.
async fn count_stopped(
    client: &Client,
    target: Target<'_>,
    tracked: &Tracked,
    task_definition: Option<&str>,
    poll: &PollPolicy,
) -> usize {
    if poll.stopped_task_limit == 0 {
        return 0;
    }
    match service_tasks(client, target, DesiredStatus::Stopped, 100).await {
        Ok(tasks) => tasks
            .iter()
            .filter(|t| belongs_to(t, tracked, task_definition))
            .count(),
        Err(err) => {
            tracing::debug!(error = %err, "could not list stopped tasks");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(now, Duration::from_secs(90)),
            now + Duration::from_secs(90)
        );
        assert_eq!(deadline_after(now, Duration::MAX), now + LONGEST_WAIT);
    }
}
