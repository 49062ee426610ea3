//! Turning a failed deployment into an explanation: the stopped tasks' reasons,
//! the latest service events and, for known failure patterns, what to do.

use aws_sdk_ecs::types::DesiredStatus;
use aws_sdk_ecs::Client;

use super::calls::Target;
use super::error::{EcsError, FailureKind, StoppedTask};
use super::progress::{ServiceView, Tracked};
use super::tasks::{belongs_to, newest_first, service_tasks, stopped_task};

/// How many stopped tasks and events a diagnostic shows; more is noise.
pub(crate) const MAX_STOPPED: usize = 10;
pub(crate) const MAX_EVENTS: usize = 10;

/// What to do when a task's image has no variant for the platform it runs on.
/// `{platform}` is the platform ECS named, `linux/amd64` when it named none.
pub const PLATFORM_HINT: &str =
    "the image has no variant for the platform the task runs on ({platform}). \
Check what the registry serves with the stevedore_image_manifest data source \
(platform = \"{platform}\"), and build it for that platform with \
stevedore_image_build (platforms = [\"{platform}\"]).";

/// A hint for failure texts we recognise. ECS reports a Fargate image built
/// for the wrong CPU as a pull error naming the platform it wanted:
/// `... does not contain descriptor matching platform 'linux/amd64'`.
pub(crate) fn hint_for<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let text = texts
        .into_iter()
        .find(|t| t.contains("CannotPullContainerError") && t.contains("platform"))?;
    let platform = text
        .split("platform '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .filter(|p| !p.is_empty() && p.len() < 40)
        .unwrap_or("linux/amd64");
    Some(PLATFORM_HINT.replace("{platform}", platform))
}

pub(crate) fn recent_events(view: &ServiceView) -> Vec<String> {
    view.events
        .iter()
        .take(MAX_EVENTS)
        .map(|(_, msg)| msg.clone())
        .collect()
}

/// Stopped tasks of our deployment, newest first; the service's other stopped
/// tasks only when none of ours are found, since they may still explain it.
pub(crate) async fn stopped_tasks(
    client: &Client,
    target: Target<'_>,
    tracked: &Tracked,
    task_definition: Option<&str>,
) -> Result<Vec<StoppedTask>, EcsError> {
    let mut tasks = service_tasks(client, target, DesiredStatus::Stopped, 100).await?;
    newest_first(&mut tasks);
    let ours: Vec<StoppedTask> = tasks
        .iter()
        .filter(|t| belongs_to(t, tracked, task_definition))
        .take(MAX_STOPPED)
        .map(stopped_task)
        .collect();
    if !ours.is_empty() {
        return Ok(ours);
    }
    Ok(tasks.iter().take(MAX_STOPPED).map(stopped_task).collect())
}

/// Builds `DeploymentFailed`. Gathering the stopped tasks is best effort: an
/// error there must not hide the failure we are reporting.
pub(crate) async fn failure(
    client: &Client,
    target: Target<'_>,
    tracked: &Tracked,
    task_definition: Option<&str>,
    view: &ServiceView,
    kind: FailureKind,
    reason: String,
) -> EcsError {
    let stopped = match stopped_tasks(client, target, tracked, task_definition).await {
        Ok(stopped) => stopped,
        Err(err) => {
            tracing::warn!(error = %err, "could not list the stopped tasks of the failed deployment");
            Vec::new()
        }
    };
    let events = recent_events(view);
    let texts = stopped
        .iter()
        .flat_map(|t| t.stopped_reason.iter().chain(t.container_reasons.iter()))
        .chain(events.iter())
        .chain(std::iter::once(&reason));
    let hint = hint_for(texts.map(String::as_str));
    EcsError::DeploymentFailed {
        deployment_id: tracked.id.clone(),
        kind,
        reason,
        stopped_tasks: stopped,
        events,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_pull_errors_get_the_hint() {
        let fargate = "CannotPullContainerError: pull image manifest has been retried 1 time(s): \
            image Manifest does not contain descriptor matching platform 'linux/amd64'";
        let hint = hint_for([fargate]).unwrap();
        assert!(
            hint.contains("(platform = \"linux/amd64\")")
                && hint.contains("platforms = [\"linux/amd64\"]"),
            "{hint}"
        );
        let arm = "CannotPullContainerError: image Manifest does not contain descriptor matching \
                   platform 'linux/arm64/v8'";
        assert!(hint_for([arm])
            .unwrap()
            .contains("platforms = [\"linux/arm64/v8\"]"));
        assert!(
            hint_for(["CannotPullContainerError: no matching manifest for platform"])
                .unwrap()
                .contains("linux/amd64")
        );
        assert_eq!(hint_for(["CannotPullContainerError: 403 Forbidden"]), None);
        assert_eq!(hint_for(["Essential container in task exited"]), None);
    }
}
