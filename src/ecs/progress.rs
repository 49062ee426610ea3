//! Judging one DescribeServices snapshot against the deployment we started.
//! Pure: the SDK types are flattened into small views first, so the rules can
//! be tested as a table without an ECS endpoint.

use std::time::SystemTime;

use aws_sdk_ecs::types::{Deployment, Service};

use super::error::FailureKind;

/// The deployment we are following.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tracked {
    pub id: String,
    pub created_at: Option<SystemTime>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DeploymentView {
    pub id: String,
    pub status: String,
    /// Absent when the service has no circuit breaker data (older ECS, moto).
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    pub task_definition: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub created_at: Option<SystemTime>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServiceView {
    pub status: Option<String>,
    pub deployments: Vec<DeploymentView>,
    /// Newest first, as ECS returns them.
    pub events: Vec<(Option<SystemTime>, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Completed {
        rollout_state: Option<String>,
        task_definition_arn: Option<String>,
        running: i32,
    },
    InProgress(String),
    Failed {
        kind: FailureKind,
        reason: String,
    },
    /// The service is INACTIVE: deleted out of band.
    Gone,
}

pub(crate) fn to_time(t: Option<&aws_sdk_ecs::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

impl From<&Deployment> for DeploymentView {
    fn from(d: &Deployment) -> Self {
        DeploymentView {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().unwrap_or_default().to_string(),
            rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
            rollout_reason: d.rollout_state_reason().map(str::to_string),
            task_definition: d.task_definition().map(str::to_string),
            desired: d.desired_count(),
            running: d.running_count(),
            pending: d.pending_count(),
            created_at: to_time(d.created_at()),
        }
    }
}

impl From<&Service> for ServiceView {
    fn from(s: &Service) -> Self {
        ServiceView {
            status: s.status().map(str::to_string),
            deployments: s.deployments().iter().map(DeploymentView::from).collect(),
            events: s
                .events()
                .iter()
                .map(|e| {
                    (
                        to_time(e.created_at()),
                        e.message().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        }
    }
}

pub(crate) fn judge(view: &ServiceView, tracked: &Tracked) -> Verdict {
    if view.status.as_deref() == Some("INACTIVE") {
        return Verdict::Gone;
    }
    let ours = view.deployments.iter().find(|d| d.id == tracked.id);
    let created_at = ours.and_then(|d| d.created_at).or(tracked.created_at);
    let rolling_back = view
        .events
        .iter()
        .filter(|(at, _)| {
            matches!((at, created_at), (Some(at), Some(c)) if *at >= c) || at.is_none()
        })
        .find(|(_, msg)| msg.to_ascii_lowercase().contains("rolling back"))
        .map(|(_, msg)| msg.clone());

    let Some(ours) = ours.filter(|d| d.status == "PRIMARY") else {
        return replaced(view, tracked, created_at, rolling_back);
    };
    if ours.rollout_state.as_deref() == Some("FAILED") {
        let reason = ours
            .rollout_reason
            .clone()
            .unwrap_or_else(|| "ECS marked the rollout FAILED".into());
        return Verdict::Failed {
            kind: FailureKind::RolloutFailed,
            reason,
        };
    }
    if let Some(msg) = rolling_back {
        return Verdict::Failed {
            kind: FailureKind::RolledBack,
            reason: msg,
        };
    }
    let steady = ours.running == ours.desired;
    let done = match ours.rollout_state.as_deref() {
        Some(state) => state == "COMPLETED" && steady,
        // GOTCHA: without rolloutState (no circuit breaker data) "done" can only
        // mean our deployment is the sole one left and fully running.
        None => steady && ours.pending == 0 && view.deployments.len() == 1,
    };
    if done {
        return Verdict::Completed {
            rollout_state: ours.rollout_state.clone(),
            task_definition_arn: ours.task_definition.clone(),
            running: ours.running,
        };
    }
    Verdict::InProgress(format!(
        "{}: {} of {} tasks running, {} pending; {} deployment(s) on the service",
        ours.rollout_state.as_deref().unwrap_or("no rolloutState"),
        ours.running,
        ours.desired,
        ours.pending,
        view.deployments.len()
    ))
}

/// Our deployment is gone or no longer PRIMARY: a circuit-breaker rollback
/// when an older deployment took over or the events say so, otherwise someone
/// else deployed on top of us. Either way ours did not complete.
fn replaced(
    view: &ServiceView,
    tracked: &Tracked,
    created_at: Option<SystemTime>,
    rolling_back: Option<String>,
) -> Verdict {
    let Some(primary) = view.deployments.iter().find(|d| d.status == "PRIMARY") else {
        return Verdict::InProgress(format!(
            "deployment {} is not PRIMARY and no deployment is",
            tracked.id
        ));
    };
    let older = matches!((primary.created_at, created_at), (Some(p), Some(c)) if p < c);
    if older || rolling_back.is_some() {
        let mut reason = format!(
            "the service went back to deployment {} (the deployment circuit breaker rolled back)",
            primary.id
        );
        if let Some(msg) = rolling_back {
            reason.push_str(&format!("; ECS said: {msg}"));
        }
        return Verdict::Failed {
            kind: FailureKind::RolledBack,
            reason,
        };
    }
    Verdict::Failed {
        kind: FailureKind::Superseded,
        reason: format!(
            "deployment {} became PRIMARY before ours completed",
            primary.id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    fn dep(
        id: &str,
        status: &str,
        rollout: Option<&str>,
        running: i32,
        created: u64,
    ) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            rollout_state: rollout.map(str::to_string),
            task_definition: Some("td:2".into()),
            desired: 2,
            running,
            pending: 2 - running,
            created_at: at(created),
            ..Default::default()
        }
    }

    fn view(deployments: Vec<DeploymentView>, events: &[(u64, &str)]) -> ServiceView {
        ServiceView {
            status: Some("ACTIVE".into()),
            deployments,
            events: events
                .iter()
                .map(|(t, m)| (at(*t), m.to_string()))
                .collect(),
        }
    }

    fn ours() -> Tracked {
        Tracked {
            id: "new".into(),
            created_at: at(100),
        }
    }

    fn kind(v: Verdict) -> Option<FailureKind> {
        match v {
            Verdict::Failed { kind, .. } => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn completed_needs_rollout_completed_and_all_running() {
        let v = view(vec![dep("new", "PRIMARY", Some("COMPLETED"), 2, 100)], &[]);
        assert!(matches!(
            judge(&v, &ours()),
            Verdict::Completed { running: 2, .. }
        ));
        let v = view(vec![dep("new", "PRIMARY", Some("COMPLETED"), 1, 100)], &[]);
        assert!(matches!(judge(&v, &ours()), Verdict::InProgress(_)));
        let v = view(
            vec![dep("new", "PRIMARY", Some("IN_PROGRESS"), 2, 100)],
            &[],
        );
        assert!(matches!(judge(&v, &ours()), Verdict::InProgress(_)));
    }

    #[test]
    fn without_rollout_state_ours_must_be_the_only_deployment() {
        let two = view(
            vec![
                dep("new", "PRIMARY", None, 2, 100),
                dep("old", "ACTIVE", None, 2, 50),
            ],
            &[],
        );
        assert!(matches!(judge(&two, &ours()), Verdict::InProgress(_)));
        let one = view(vec![dep("new", "PRIMARY", None, 2, 100)], &[]);
        assert!(matches!(
            judge(&one, &ours()),
            Verdict::Completed {
                rollout_state: None,
                ..
            }
        ));
    }

    #[test]
    fn failed_rollout_is_a_failure() {
        let v = view(vec![dep("new", "PRIMARY", Some("FAILED"), 0, 100)], &[]);
        assert_eq!(kind(judge(&v, &ours())), Some(FailureKind::RolloutFailed));
    }

    #[test]
    fn older_deployment_back_on_primary_is_a_rollback_even_when_steady() {
        let v = view(vec![dep("old", "PRIMARY", Some("COMPLETED"), 2, 50)], &[]);
        assert_eq!(kind(judge(&v, &ours())), Some(FailureKind::RolledBack));
        let v = view(
            vec![
                dep("old", "PRIMARY", Some("IN_PROGRESS"), 1, 50),
                dep("new", "ACTIVE", Some("IN_PROGRESS"), 0, 100),
            ],
            &[],
        );
        assert_eq!(kind(judge(&v, &ours())), Some(FailureKind::RolledBack));
    }

    #[test]
    fn rolling_back_event_after_our_start_is_a_rollback() {
        let v = view(
            vec![dep("new", "PRIMARY", Some("IN_PROGRESS"), 0, 100)],
            &[(120, "(service web) rolling back to deployment old.")],
        );
        assert_eq!(kind(judge(&v, &ours())), Some(FailureKind::RolledBack));
        // An old rollback, from before our deployment, says nothing about ours.
        let v = view(
            vec![dep("new", "PRIMARY", Some("IN_PROGRESS"), 0, 100)],
            &[(20, "(service web) rolling back to deployment older.")],
        );
        assert!(matches!(judge(&v, &ours()), Verdict::InProgress(_)));
    }

    #[test]
    fn newer_primary_without_rollback_means_superseded() {
        let v = view(
            vec![dep("newer", "PRIMARY", Some("IN_PROGRESS"), 0, 200)],
            &[],
        );
        assert_eq!(kind(judge(&v, &ours())), Some(FailureKind::Superseded));
    }

    #[test]
    fn inactive_service_is_gone() {
        let mut v = view(vec![], &[]);
        v.status = Some("INACTIVE".into());
        assert_eq!(judge(&v, &ours()), Verdict::Gone);
    }
}
