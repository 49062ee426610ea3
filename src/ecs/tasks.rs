//! Tasks of a service: the image digests its running tasks report, and the
//! stopped tasks that explain a failed deployment.

use std::time::SystemTime;

use aws_sdk_ecs::types::{DesiredStatus, Task};
use aws_sdk_ecs::Client;

use super::calls::{retry_throttled, Target};
use super::error::{EcsError, StoppedTask};
use super::progress::{to_time, Tracked};

/// DescribeTasks takes at most 100 ARNs per call.
const DESCRIBE_BATCH: usize = 100;

/// Describes the service's tasks with the given desired status. ListTasks is
/// paginated; `limit` caps how many we look at (stopped tasks pile up).
pub(crate) async fn service_tasks(
    client: &Client,
    target: Target<'_>,
    desired: DesiredStatus,
    limit: usize,
) -> Result<Vec<Task>, EcsError> {
    let mut arns: Vec<String> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = retry_throttled("ListTasks", target, || {
            client
                .list_tasks()
                .cluster(target.cluster)
                .service_name(target.service)
                .desired_status(desired.clone())
                .set_next_token(next.clone())
                .send()
        })
        .await?;
        arns.extend(page.task_arns().iter().cloned());
        next = page.next_token().map(str::to_string);
        if next.is_none() || arns.len() >= limit {
            break;
        }
    }
    arns.truncate(limit);

    let mut tasks = Vec::with_capacity(arns.len());
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let described = retry_throttled("DescribeTasks", target, || {
            client
                .describe_tasks()
                .cluster(target.cluster)
                .set_tasks(Some(batch.to_vec()))
                .send()
        })
        .await?;
        tasks.extend(described.tasks().iter().cloned());
    }
    Ok(tasks)
}

/// A running task of the deployment and the image digests its containers report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningTask {
    pub task_arn: String,
    /// `containers[].imageDigest`, in container order; empty when none reported.
    pub image_digests: Vec<String>,
}

/// What the service's running tasks report: every `containers[].imageDigest`
/// (sorted, deduplicated), and the running tasks of the tracked deployment.
pub(crate) async fn running_images(
    client: &Client,
    target: Target<'_>,
    tracked: &Tracked,
    task_definition: Option<&str>,
) -> Result<(Vec<String>, Vec<RunningTask>), EcsError> {
    let tasks = service_tasks(client, target, DesiredStatus::Running, 1000).await?;
    let mut digests: Vec<String> = tasks
        .iter()
        .flat_map(|t| t.containers())
        .filter_map(|c| c.image_digest())
        .map(str::to_string)
        .collect();
    digests.sort();
    digests.dedup();
    let ours = tasks
        .iter()
        .filter(|t| belongs_to(t, tracked, task_definition))
        .map(|t| RunningTask {
            task_arn: t.task_arn().unwrap_or_default().to_string(),
            image_digests: t
                .containers()
                .iter()
                .filter_map(|c| c.image_digest())
                .map(str::to_string)
                .collect(),
        })
        .collect();
    Ok((digests, ours))
}

/// True when the task was started for this deployment. ECS sets a service
/// task's `startedBy` to the deployment id; the task definition plus creation
/// time is the fallback for endpoints that leave it empty.
pub(crate) fn belongs_to(task: &Task, tracked: &Tracked, task_definition: Option<&str>) -> bool {
    if let Some(by) = task.started_by() {
        return by == tracked.id;
    }
    let same_def = task_definition.is_some() && task.task_definition_arn() == task_definition;
    let after = match (to_time(task.created_at()), tracked.created_at) {
        (Some(t), Some(start)) => t >= start,
        _ => true,
    };
    same_def && after
}

pub(crate) fn stopped_task(task: &Task) -> StoppedTask {
    let stopped_reason = task.stopped_reason();
    StoppedTask {
        task_arn: task.task_arn().unwrap_or_default().to_string(),
        stopped_reason: stopped_reason.map(str::to_string),
        // ECS often repeats the task's reason on the container; once is enough.
        container_reasons: task
            .containers()
            .iter()
            .filter_map(|c| {
                c.reason()
                    .filter(|r| Some(*r) != stopped_reason)
                    .map(|r| (c, r))
            })
            .map(|(c, r)| format!("{}: {r}", c.name().unwrap_or("container")))
            .collect(),
    }
}

/// Newest stop first, so the list a user reads starts with what just happened.
pub(crate) fn newest_first(tasks: &mut [Task]) {
    tasks.sort_by_key(|t| {
        std::cmp::Reverse(to_time(t.stopped_at()).unwrap_or(SystemTime::UNIX_EPOCH))
    });
}
