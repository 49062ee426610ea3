//! Builders for the ECS JSON shapes the scripts answer with.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::server::{aws_error, Reply};

/// The deployment under test and the one it replaces.
pub const NEW: &str = "ecs-svc/2222";
pub const OLD: &str = "ecs-svc/1111";
pub const CLUSTER: &str = "prod";
pub const SERVICE: &str = "web";
pub const TASK_DEF: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7";
pub const PLATFORM_REASON: &str =
    "CannotPullContainerError: pull image manifest has been retried 7 time(s): \
    image Manifest does not contain descriptor matching platform 'linux/amd64'";

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub fn deployment(
    id: &str,
    status: &str,
    rollout: Option<&str>,
    running: i32,
    created: f64,
) -> Value {
    let mut d = json!({
        "id": id, "status": status, "taskDefinition": TASK_DEF,
        "desiredCount": 1, "runningCount": running, "pendingCount": 1 - running,
        "createdAt": created, "updatedAt": created,
    });
    if let Some(state) = rollout {
        d["rolloutState"] = json!(state);
        d["rolloutStateReason"] = json!(format!("ECS deployment {id} {}", state.to_lowercase()));
    }
    d
}

/// Events are given newest first, as ECS lists them.
pub fn service(deployments: Vec<Value>, events: &[&str]) -> Value {
    let t = now();
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, m)| json!({ "id": format!("ev{i}"), "createdAt": t - i as f64, "message": m }))
        .collect();
    json!({
        "serviceArn": format!("arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{SERVICE}"),
        "serviceName": SERVICE, "status": "ACTIVE", "desiredCount": 1, "runningCount": 1,
        "taskDefinition": TASK_DEF, "deployments": deployments, "events": events,
    })
}

pub fn described(svc: Value) -> Value {
    json!({ "services": [svc], "failures": [] })
}

pub fn updated(svc: Value) -> Value {
    json!({ "service": svc })
}

pub fn task_list(arns: &[&str]) -> Value {
    json!({ "taskArns": arns })
}

pub fn stopped_task(arn: &str, started_by: &str, reason: &str) -> Value {
    json!({
        "taskArn": arn, "taskDefinitionArn": TASK_DEF, "startedBy": started_by,
        "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stoppedReason": reason,
        "createdAt": now(), "stoppedAt": now(),
        "containers": [{ "name": "app", "reason": reason }],
    })
}

pub fn running_task(arn: &str, digest: &str) -> Value {
    json!({
        "taskArn": arn, "taskDefinitionArn": TASK_DEF, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
        "containers": [{ "name": "app", "imageDigest": digest }],
    })
}

pub fn is_stopped_query(body: &Value) -> bool {
    body["desiredStatus"] == "STOPPED"
}

pub fn ok(v: Value) -> Reply {
    Reply::Ok(v)
}

/// The service right after UpdateService: our deployment PRIMARY, the old one draining.
pub fn rolling(created: f64) -> Value {
    service(
        vec![
            deployment(NEW, "PRIMARY", Some("IN_PROGRESS"), 0, created),
            deployment(OLD, "ACTIVE", Some("COMPLETED"), 1, created - 600.0),
        ],
        &["(service web) has started 1 tasks: (task a1)."],
    )
}

pub fn forever_in_progress() -> impl FnMut(&str, &Value) -> Reply + Send + 'static {
    let t = now();
    move |op, _| match op {
        "DescribeServices" => ok(described(rolling(t))),
        "ListTasks" => ok(task_list(&[])),
        other => aws_error("UnknownOperationException", other),
    }
}
