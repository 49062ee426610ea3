//! The fake answers as ECS does; these pin the behaviours the other tests
//! rely on, so a looser fake cannot make them pass.

use serde_json::{json, Value};

use crate::model::Model;
use crate::ops::answer;
use crate::server::Reply;
use crate::{prod_web, CLUSTER, DIGEST_B, IMAGE_REPO, SERVICE};

fn ok(m: &mut Model, op: &str, body: Value) -> Value {
    match answer(m, op, &body) {
        Reply::Ok(v) => v,
        Reply::Err { code, message, .. } => panic!("{op} {body}: {code}: {message}"),
    }
}

fn err(m: &mut Model, op: &str, body: Value) -> (u16, &'static str) {
    match answer(m, op, &body) {
        Reply::Ok(v) => panic!("{op} {body} answered {v}"),
        Reply::Err { status, code, .. } => (status, code),
    }
}

fn primary(v: &Value) -> String {
    v["service"]["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn update_service_deploys_only_when_forced_or_the_task_definition_changes() {
    let (mut m, initial) = prod_web();
    let plain = ok(
        &mut m,
        "UpdateService",
        json!({ "cluster": CLUSTER, "service": SERVICE }),
    );
    assert_eq!(primary(&plain), initial);
    assert_eq!(plain["service"]["deployments"].as_array().unwrap().len(), 1);
    let same = ok(
        &mut m,
        "UpdateService",
        json!({ "cluster": CLUSTER, "service": SERVICE, "taskDefinition": "web:1", "forceNewDeployment": false }),
    );
    assert_eq!(primary(&same), initial);
    assert_eq!(m.deployments_started, 0);

    let forced = ok(
        &mut m,
        "UpdateService",
        json!({ "cluster": CLUSTER, "service": SERVICE, "forceNewDeployment": true }),
    );
    assert_ne!(primary(&forced), initial);
    assert_eq!(
        forced["service"]["deployments"][0]["rolloutState"],
        "IN_PROGRESS"
    );
    assert_eq!(forced["service"]["deployments"][1]["status"], "ACTIVE");

    m.register("web", &[("app", &format!("{IMAGE_REPO}@{DIGEST_B}"))], None);
    let changed = ok(
        &mut m,
        "UpdateService",
        json!({ "cluster": CLUSTER, "service": SERVICE, "taskDefinition": "web:2" }),
    );
    assert!(changed["service"]["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with("web:2"));
    assert_eq!(
        changed["service"]["deployments"][0]["taskDefinition"],
        changed["service"]["taskDefinition"]
    );
    assert_eq!(m.deployments_started, 2);
}

#[test]
fn errors_are_the_ones_ecs_gives() {
    let (mut m, _) = prod_web();
    let def = m.service(CLUSTER, SERVICE).task_definition.clone();
    m.add_service(CLUSTER, "old", &def, 0);
    m.service(CLUSTER, "old").status = "INACTIVE".into();
    let cases = [
        (
            "UpdateService",
            json!({ "cluster": CLUSTER }),
            "InvalidParameterException",
        ),
        (
            "UpdateService",
            json!({ "cluster": CLUSTER, "service": "old" }),
            "ServiceNotActiveException",
        ),
        (
            "UpdateService",
            json!({ "cluster": CLUSTER, "service": "nope" }),
            "ServiceNotFoundException",
        ),
        (
            "UpdateService",
            json!({ "cluster": "nope", "service": SERVICE }),
            "ClusterNotFoundException",
        ),
        (
            "UpdateService",
            json!({ "cluster": CLUSTER, "service": SERVICE, "taskDefinition": "web:9" }),
            "ClientException",
        ),
        (
            "DescribeServices",
            json!({ "cluster": CLUSTER }),
            "InvalidParameterException",
        ),
        (
            "DescribeServices",
            json!({ "cluster": CLUSTER, "services": [] }),
            "InvalidParameterException",
        ),
        (
            "DescribeServices",
            json!({ "services": [SERVICE] }),
            "ClusterNotFoundException",
        ),
        (
            "DescribeTasks",
            json!({ "cluster": CLUSTER }),
            "InvalidParameterException",
        ),
        (
            "ListTasks",
            json!({ "cluster": CLUSTER, "maxResults": 101 }),
            "InvalidParameterException",
        ),
        (
            "ListTasks",
            json!({ "cluster": CLUSTER, "nextToken": "forged" }),
            "InvalidParameterException",
        ),
        (
            "DescribeTaskDefinition",
            json!({}),
            "InvalidParameterException",
        ),
        (
            "RegisterTaskDefinition",
            json!({ "family": "x" }),
            "InvalidParameterException",
        ),
    ];
    for (op, body, want) in cases {
        assert_eq!(err(&mut m, op, body.clone()), (400, want), "{op} {body}");
    }
}

#[test]
fn list_tasks_filters_and_pages() {
    let (mut m, _) = prod_web();
    let def = m.service(CLUSTER, SERVICE).task_definition.clone();
    m.add_service(CLUSTER, "api", &def, 2);
    let web_id = m.service(CLUSTER, SERVICE).deployments[0].id.clone();
    for _ in 0..4 {
        m.start_task(CLUSTER, SERVICE, &web_id, &def, 0.0);
    }
    m.stopped_task(CLUSTER, SERVICE, &web_id, "gone");
    let q = |extra: Value| {
        let mut body = json!({ "cluster": CLUSTER, "serviceName": SERVICE });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let all = ok(&mut m, "ListTasks", q(json!({})));
    assert_eq!(
        all["taskArns"].as_array().unwrap().len(),
        5,
        "RUNNING by default, web only"
    );
    assert!(all["nextToken"].is_null());
    let stopped = ok(
        &mut m,
        "ListTasks",
        q(json!({ "desiredStatus": "STOPPED" })),
    );
    assert_eq!(stopped["taskArns"].as_array().unwrap().len(), 1);
    let first = ok(&mut m, "ListTasks", q(json!({ "maxResults": 2 })));
    assert_eq!(first["taskArns"].as_array().unwrap().len(), 2);
    let token = first["nextToken"].as_str().unwrap().to_string();
    let mut seen: Vec<Value> = first["taskArns"].as_array().unwrap().clone();
    let mut next = Some(token);
    while let Some(tok) = next {
        let p = ok(
            &mut m,
            "ListTasks",
            q(json!({ "maxResults": 2, "nextToken": tok })),
        );
        seen.extend(p["taskArns"].as_array().unwrap().iter().cloned());
        next = p["nextToken"].as_str().map(str::to_string);
    }
    assert_eq!(seen, *all["taskArns"].as_array().unwrap());
}

#[test]
fn describe_tasks_answers_only_what_was_asked() {
    let (mut m, _) = prod_web();
    let listed = ok(
        &mut m,
        "ListTasks",
        json!({ "cluster": CLUSTER, "serviceName": SERVICE }),
    );
    let arn = listed["taskArns"][0].clone();
    let d = ok(
        &mut m,
        "DescribeTasks",
        json!({ "cluster": CLUSTER, "tasks": [arn, "arn:nope"] }),
    );
    assert_eq!(d["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(d["tasks"][0]["taskArn"], arn);
    assert_eq!(
        d["failures"],
        json!([{ "arn": "arn:nope", "reason": "MISSING" }])
    );
}
