//! The one error type of the ECS module. Every variant carries enough context
//! for `resources::ecs_redeploy` to build a diagnostic without calling AWS
//! again, and `Display` already reads as a plain, multi-line explanation.

use std::fmt;
use std::time::Duration;

/// A task of the service that stopped, with the reasons ECS gave for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoppedTask {
    pub task_arn: String,
    /// `stoppedReason` of the task, e.g. `CannotPullContainerError: ...`.
    pub stopped_reason: Option<String>,
    /// `containers[].reason`, prefixed with the container name, when ECS set one.
    pub container_reasons: Vec<String>,
}

/// Why a deployment is considered failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// ECS set `rolloutState = FAILED` on the deployment.
    RolloutFailed,
    /// The deployment circuit breaker rolled the service back to an older deployment:
    /// the service ends steady, but not on what we deployed.
    RolledBack,
    /// Another deployment became PRIMARY before ours completed.
    Superseded,
    /// Tasks of the deployment kept stopping (no circuit breaker to say FAILED).
    TasksKeepStopping,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::RolloutFailed => "failed",
            FailureKind::RolledBack => "was rolled back",
            FailureKind::Superseded => "was replaced by another deployment",
            FailureKind::TasksKeepStopping => "keeps stopping its tasks",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    #[error("ECS service {service:?} was not found in cluster {cluster:?} (deleted, or INACTIVE)")]
    ServiceNotFound { cluster: String, service: String },

    #[error("ECS cluster {cluster:?} was not found")]
    ClusterNotFound { cluster: String },

    #[error("ECS kept throttling {operation} after {attempts} attempts; try again later")]
    Throttled {
        operation: &'static str,
        attempts: u32,
    },

    #[error("ECS {operation} failed: {message}")]
    Api {
        operation: &'static str,
        message: String,
    },

    /// The response was well-formed but lacked what we rely on (e.g. no PRIMARY deployment).
    #[error("ECS {operation} returned an unexpected response: {what}")]
    UnexpectedResponse {
        operation: &'static str,
        what: String,
    },

    #[error("{}", explain_failure(.deployment_id, .kind, .reason, .stopped_tasks, .events, .hint))]
    DeploymentFailed {
        deployment_id: String,
        kind: FailureKind,
        reason: String,
        stopped_tasks: Vec<StoppedTask>,
        /// Recent service events, newest first.
        events: Vec<String>,
        hint: Option<String>,
    },

    #[error(
        "ECS deployment {deployment_id} did not finish within {}s.\nLast state: {last_state}\n\
         The deployment goes on in ECS; raise the timeout or look at the service's events.",
        .waited.as_secs()
    )]
    Timeout {
        deployment_id: String,
        waited: Duration,
        last_state: String,
    },

    #[error(
        "waiting for ECS deployment {deployment_id} was cancelled; the deployment goes on in ECS"
    )]
    Cancelled { deployment_id: String },
}

impl EcsError {
    /// True when the service or its cluster is gone, so a resource can drop itself from state.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            EcsError::ServiceNotFound { .. } | EcsError::ClusterNotFound { .. }
        )
    }
}

fn explain_failure(
    deployment_id: &str,
    kind: &FailureKind,
    reason: &str,
    stopped_tasks: &[StoppedTask],
    events: &[String],
    hint: &Option<String>,
) -> String {
    let mut out = format!("ECS deployment {deployment_id} {kind}: {reason}");
    if !stopped_tasks.is_empty() {
        out.push_str("\n\nStopped tasks:");
        for task in stopped_tasks {
            let why = task
                .stopped_reason
                .as_deref()
                .unwrap_or("(no reason given)");
            out.push_str(&format!("\n  - {}: {why}", short_arn(&task.task_arn)));
            for container in &task.container_reasons {
                out.push_str(&format!("\n      {container}"));
            }
        }
    }
    if !events.is_empty() {
        out.push_str("\n\nRecent service events (newest first):");
        for event in events {
            out.push_str(&format!("\n  - {event}"));
        }
    }
    if let Some(hint) = hint {
        out.push_str(&format!("\n\nHint: {hint}"));
    }
    out
}

/// Task ARNs are long; the trailing id is what people match against the console.
fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_message_lists_tasks_events_and_hint() {
        let err = EcsError::DeploymentFailed {
            deployment_id: "ecs-svc/1".into(),
            kind: FailureKind::RolloutFailed,
            reason: "tasks failed to start".into(),
            stopped_tasks: vec![StoppedTask {
                task_arn: "arn:aws:ecs:us-east-1:1:task/prod/abc".into(),
                stopped_reason: Some("CannotPullContainerError: boom".into()),
                container_reasons: vec!["app: pull failed".into()],
            }],
            events: vec!["service web has started 1 tasks".into()],
            hint: Some("check the platform".into()),
        };
        let text = err.to_string();
        assert!(text.starts_with("ECS deployment ecs-svc/1 failed: tasks failed to start"));
        assert!(text.contains("\n  - abc: CannotPullContainerError: boom\n      app: pull failed"));
        assert!(text.contains("Recent service events (newest first):\n  - service web"));
        assert!(text.ends_with("Hint: check the platform"));
    }

    #[test]
    fn not_found_variants_are_flagged() {
        assert!(EcsError::ClusterNotFound {
            cluster: "c".into()
        }
        .is_not_found());
        assert!(!EcsError::Cancelled {
            deployment_id: "d".into()
        }
        .is_not_found());
    }
}
