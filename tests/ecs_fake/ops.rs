//! The ECS API answered from the model, with ECS's checks: required fields
//! (InvalidParameterException), unknown clusters (ClusterNotFoundException),
//! unknown or INACTIVE services, DescribeTasks/DescribeServices `failures`
//! with reason MISSING, and ListTasks/ListContainerInstances paging.
#![allow(dead_code)]

use serde_json::{json, Value};

use crate::model::{Model, Service, Task};
use crate::server::{aws_error, Reply};

fn invalid(message: &str) -> Reply {
    aws_error("InvalidParameterException", message)
}

fn required<'a>(body: &'a Value, field: &str) -> Result<&'a Value, Reply> {
    match &body[field] {
        Value::Null => Err(invalid(&format!("{field} is required"))),
        Value::Array(a) if a.is_empty() => Err(invalid(&format!("{field} can not be empty."))),
        v => Ok(v),
    }
}

/// ECS takes a cluster name or ARN and uses `default` when none is given.
fn cluster_name(body: &Value) -> String {
    let raw = body["cluster"].as_str().unwrap_or("default");
    raw.rsplit('/').next().unwrap_or(raw).to_string()
}

/// Service name from a name or ARN.
fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

pub fn answer(m: &mut Model, op: &str, body: &Value) -> Reply {
    let result = match op {
        "DescribeServices" => describe_services(m, body),
        "UpdateService" => update_service(m, body),
        "ListTasks" => list_tasks(m, body),
        "DescribeTasks" => describe_tasks(m, body),
        "DescribeTaskDefinition" => describe_task_definition(m, body),
        "RegisterTaskDefinition" => register_task_definition(m, body),
        "ListContainerInstances" => list_container_instances(m, body),
        "DescribeContainerInstances" => describe_container_instances(m, body),
        other => Err(aws_error("UnknownOperationException", other)),
    };
    result.unwrap_or_else(|reply| reply)
}

fn known_cluster(m: &Model, body: &Value) -> Result<String, Reply> {
    let name = cluster_name(body);
    if m.clusters.contains_key(&name) {
        Ok(name)
    } else {
        Err(aws_error("ClusterNotFoundException", "Cluster not found."))
    }
}

pub fn service_json(s: &Service) -> Value {
    let deployments: Vec<Value> = s
        .deployments
        .iter()
        .map(|d| {
            let mut v = json!({
                "id": d.id, "status": d.status, "taskDefinition": d.task_definition,
                "desiredCount": d.desired, "runningCount": d.running, "pendingCount": d.pending,
                "createdAt": d.created_at, "updatedAt": d.created_at,
            });
            if let Some(state) = &d.rollout_state {
                v["rolloutState"] = json!(state);
                v["rolloutStateReason"] = json!(d.rollout_reason);
            }
            v
        })
        .collect();
    let events: Vec<Value> = s
        .events
        .iter()
        .enumerate()
        .map(|(i, (at, msg))| json!({ "id": format!("ev{i}"), "createdAt": at, "message": msg }))
        .collect();
    let running: i32 = s.deployments.iter().map(|d| d.running).sum();
    let mut v = json!({
        "serviceArn": s.arn, "serviceName": s.name, "status": s.status,
        "desiredCount": s.desired, "runningCount": running, "taskDefinition": s.task_definition,
        "deployments": deployments, "events": events,
        "deploymentConfiguration": { "deploymentCircuitBreaker": { "enable": s.circuit_breaker, "rollback": s.circuit_breaker } },
    });
    if let Some(lt) = &s.launch_type {
        v["launchType"] = json!(lt);
    }
    if !s.capacity_providers.is_empty() {
        let strategy: Vec<Value> = s
            .capacity_providers
            .iter()
            .map(|p| json!({ "capacityProvider": p, "weight": 1 }))
            .collect();
        v["capacityProviderStrategy"] = json!(strategy);
    }
    v
}

fn describe_services(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let names = required(body, "services")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    if names.len() > 10 {
        return Err(invalid("services can have at most 10 items."));
    }
    let cluster = known_cluster(m, body)?;
    m.tick(&cluster);
    let (mut services, mut failures) = (Vec::new(), Vec::new());
    for name in names.iter().filter_map(Value::as_str) {
        match m.clusters[&cluster].services.get(short(name)) {
            Some(s) => services.push(service_json(s)),
            None => failures.push(json!({ "arn": name, "reason": "MISSING" })),
        }
    }
    Ok(Reply::Ok(
        json!({ "services": services, "failures": failures }),
    ))
}

fn update_service(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let name = short(required(body, "service")?.as_str().unwrap_or_default()).to_string();
    let cluster = known_cluster(m, body)?;
    let Some(svc) = m.clusters[&cluster].services.get(&name) else {
        return Err(aws_error("ServiceNotFoundException", "Service not found."));
    };
    if svc.status != "ACTIVE" {
        return Err(aws_error(
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    let current = svc.task_definition.clone();
    let wanted = match body["taskDefinition"].as_str() {
        Some(name) => match m.task_def(name) {
            Some(def) => def.arn.clone(),
            None => return Err(aws_error("ClientException", "TaskDefinition not found.")),
        },
        None => current.clone(),
    };
    if let Some(count) = body["desiredCount"].as_i64() {
        m.service(&cluster, &name).desired = count as i32;
    }
    // ECS starts a deployment only when asked to, or when the task definition changes.
    if body["forceNewDeployment"] == json!(true) || wanted != current {
        m.start_deployment(&cluster, &name, &wanted);
    }
    Ok(Reply::Ok(
        json!({ "service": service_json(m.service(&cluster, &name)) }),
    ))
}

/// One page of `items`: `maxResults` (1..=100, default 100) from the offset
/// `nextToken` names; the token is opaque to clients.
fn page<T: Clone>(items: &[T], body: &Value) -> Result<(Vec<T>, Option<String>), Reply> {
    let max = body["maxResults"].as_u64().unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(invalid("maxResults must be between 1 and 100."));
    }
    let start = match body["nextToken"].as_str() {
        None => 0,
        Some(tok) => tok
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| invalid("Invalid nextToken."))?,
    };
    let end = (start + max as usize).min(items.len());
    let next = (end < items.len()).then(|| format!("page-{end}"));
    Ok((items[start..end].to_vec(), next))
}

fn list_tasks(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let cluster = known_cluster(m, body)?;
    let desired = body["desiredStatus"].as_str().unwrap_or("RUNNING");
    if !["RUNNING", "PENDING", "STOPPED"].contains(&desired) {
        return Err(invalid(
            "desiredStatus must be RUNNING, PENDING or STOPPED.",
        ));
    }
    let service = body["serviceName"].as_str().map(short);
    if let Some(s) = service {
        if !m.clusters[&cluster].services.contains_key(s) {
            return Err(aws_error("ServiceNotFoundException", "Service not found."));
        }
    }
    let arns: Vec<String> = m.clusters[&cluster]
        .tasks
        .iter()
        .filter(|t| service.is_none_or(|s| t.service == s) && t.desired_status == desired)
        .map(|t| t.arn.clone())
        .collect();
    let (arns, next) = page(&arns, body)?;
    Ok(Reply::Ok(json!({ "taskArns": arns, "nextToken": next })))
}

pub fn task_json(t: &Task) -> Value {
    let containers: Vec<Value> = t
        .containers
        .iter()
        .map(|(name, digest, reason)| json!({ "name": name, "imageDigest": digest, "reason": reason }))
        .collect();
    json!({
        "taskArn": t.arn, "taskDefinitionArn": t.task_definition, "startedBy": t.started_by,
        "group": format!("service:{}", t.service), "lastStatus": t.last_status,
        "desiredStatus": t.desired_status, "stoppedReason": t.stopped_reason,
        "createdAt": t.created_at, "stoppedAt": t.stopped_at, "containers": containers,
    })
}

fn describe_tasks(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let asked = required(body, "tasks")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    if asked.len() > 100 {
        return Err(invalid("tasks can have at most 100 items."));
    }
    let cluster = known_cluster(m, body)?;
    let (mut tasks, mut failures) = (Vec::new(), Vec::new());
    for arn in asked.iter().filter_map(Value::as_str) {
        match m.clusters[&cluster].tasks.iter().find(|t| t.arn == arn) {
            Some(t) => tasks.push(task_json(t)),
            None => failures.push(json!({ "arn": arn, "reason": "MISSING" })),
        }
    }
    Ok(Reply::Ok(json!({ "tasks": tasks, "failures": failures })))
}

fn task_def_json(m: &Model, name: &str) -> Result<Value, Reply> {
    let def = m
        .task_def(name)
        .ok_or_else(|| aws_error("ClientException", "Unable to describe task definition."))?;
    let containers: Vec<Value> = def
        .containers
        .iter()
        .map(|(n, i)| json!({ "name": n, "image": i, "essential": true }))
        .collect();
    let mut v = json!({
        "taskDefinitionArn": def.arn, "family": def.family, "revision": def.revision,
        "containerDefinitions": containers, "status": "ACTIVE",
    });
    if let Some((os, arch)) = &def.runtime_platform {
        v["runtimePlatform"] = json!({ "operatingSystemFamily": os, "cpuArchitecture": arch });
    }
    Ok(v)
}

fn describe_task_definition(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let name = required(body, "taskDefinition")?
        .as_str()
        .unwrap_or_default();
    Ok(Reply::Ok(
        json!({ "taskDefinition": task_def_json(m, name)? }),
    ))
}

fn register_task_definition(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let family = required(body, "family")?
        .as_str()
        .unwrap_or_default()
        .to_string();
    let defs = required(body, "containerDefinitions")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut containers = Vec::new();
    for c in &defs {
        match (c["name"].as_str(), c["image"].as_str()) {
            (Some(n), Some(i)) => containers.push((n.to_string(), i.to_string())),
            _ => {
                return Err(invalid(
                    "Container.name and Container.image should not be null or empty.",
                ))
            }
        }
    }
    let refs: Vec<(&str, &str)> = containers
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_str()))
        .collect();
    let platform = &body["runtimePlatform"];
    let platform = platform["cpuArchitecture"].as_str().map(|arch| {
        (
            platform["operatingSystemFamily"]
                .as_str()
                .unwrap_or("LINUX"),
            arch,
        )
    });
    let arn = m.register(&family, &refs, platform);
    Ok(Reply::Ok(
        json!({ "taskDefinition": task_def_json(m, &arn)? }),
    ))
}

fn list_container_instances(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let cluster = known_cluster(m, body)?;
    let arns: Vec<String> = m.clusters[&cluster]
        .instances
        .iter()
        .map(|i| i.arn.clone())
        .collect();
    let (arns, next) = page(&arns, body)?;
    Ok(Reply::Ok(
        json!({ "containerInstanceArns": arns, "nextToken": next }),
    ))
}

fn describe_container_instances(m: &mut Model, body: &Value) -> Result<Reply, Reply> {
    let asked = required(body, "containerInstances")?
        .as_array()
        .cloned()
        .unwrap_or_default();
    if asked.len() > 100 {
        return Err(invalid("containerInstances can have at most 100 items."));
    }
    let cluster = known_cluster(m, body)?;
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for arn in asked.iter().filter_map(Value::as_str) {
        match m.clusters[&cluster].instances.iter().find(|i| i.arn == arn) {
            Some(i) => {
                let mut attributes = vec![json!({ "name": "ecs.os-type", "value": "linux" })];
                if let Some(arch) = &i.cpu_architecture {
                    attributes.push(json!({ "name": "ecs.cpu-architecture", "value": arch }));
                }
                found.push(json!({ "containerInstanceArn": i.arn, "status": "ACTIVE", "attributes": attributes }));
            }
            None => failures.push(json!({ "arn": arn, "reason": "MISSING" })),
        }
    }
    Ok(Reply::Ok(
        json!({ "containerInstances": found, "failures": failures }),
    ))
}
