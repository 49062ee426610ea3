//! `stevedore_ecs_redeploy`'s apply against the fake, in process: what the
//! state records, also when things go wrong after ECS was changed.

use std::sync::Arc;

use stevedore::diag::Severity;
use stevedore::provider::{ProviderConfig, ProviderData};
use stevedore::resource::{ApplyRequest, ApplyResponse, Ctx};
use stevedore::resources::ecs_redeploy::EcsRedeploy;
use stevedore::value::Value;
use tokio_util::sync::CancellationToken;

use crate::model::Model;
use crate::server::{aws_error, FakeEcs};
use crate::*;

pub fn ctx(fake: &FakeEcs) -> Ctx {
    acceptance_tests::moto::export_aws_env();
    let mut config = ProviderConfig::default();
    config.aws.region = Some("us-east-1".into());
    config.aws.ecs_endpoint = Some(fake.url.clone());
    Ctx {
        data: Some(Arc::new(ProviderData::new(config))),
        cancel: CancellationToken::new(),
    }
}

/// The planned state of a create (or of an update from `prior`) that deploys.
pub fn planned(digest: Option<&str>, timeout: Option<&str>) -> Value {
    let timeouts = match timeout {
        Some(t) => Value::object([("create", Value::string(t)), ("update", Value::string(t))]),
        None => Value::Null,
    };
    Value::object([
        ("cluster", Value::string(CLUSTER)),
        ("service", Value::string(SERVICE)),
        ("digest", Value::opt_string(digest.map(str::to_string))),
        ("triggers", Value::Null),
        ("wait_for_steady_state", Value::Bool(true)),
        ("verify_images", Value::Bool(false)),
        ("timeouts", timeouts),
        ("id", Value::string(format!("{CLUSTER}/{SERVICE}"))),
        ("deployment_id", Value::Unknown),
        ("rollout_state", Value::Unknown),
        ("task_definition_arn", Value::Unknown),
        ("running_count", Value::Unknown),
        ("running_image_digests", Value::Unknown),
    ])
}

/// The config for `planned`: computed attributes null.
pub fn config_of(planned: &Value) -> Value {
    let mut c = planned.clone();
    for name in [
        "id",
        "deployment_id",
        "rollout_state",
        "task_definition_arn",
        "running_count",
        "running_image_digests",
    ] {
        c.set(name, Value::Null);
    }
    c
}

pub async fn apply(
    fake: &FakeEcs,
    prior: Value,
    planned: Value,
    prior_private: Vec<u8>,
) -> ApplyResponse {
    let req = ApplyRequest {
        prior,
        config: config_of(&planned),
        planned,
        planned_private: prior_private,
    };
    EcsRedeploy.apply_polling(&ctx(fake), req, fast()).await
}

pub fn errors(r: &ApplyResponse) -> Vec<String> {
    r.diags
        .0
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .collect()
}

/// The apply called UpdateService once and its state records the deployment
/// that started (not `initial`) as still in progress; returns its id.
fn assert_recorded_in_progress(fake: &FakeEcs, initial: &str, r: &ApplyResponse) -> String {
    assert_eq!(fake.count("UpdateService"), 1);
    let started = primary_id(fake);
    assert_ne!(started, initial);
    assert_eq!(r.new_state.get("deployment_id"), &Value::string(&started));
    assert_eq!(
        r.new_state.get("rollout_state"),
        &Value::string("IN_PROGRESS")
    );
    started
}

fn primary_id(fake: &FakeEcs) -> String {
    fake.model(|m: &mut Model| m.service(CLUSTER, SERVICE).deployments[0].id.clone())
}

#[tokio::test]
async fn a_failure_after_update_service_still_records_the_deployment() {
    let (m, initial) = prod_web();
    let fake = FakeEcs::with_hook(m, |_, op, _| {
        (op == "DescribeServices").then(|| {
            aws_error(
                "AccessDeniedException",
                "not allowed to ecs:DescribeServices",
            )
        })
    })
    .await;
    let r = apply(
        &fake,
        Value::Null,
        planned(Some(DIGEST_A), None),
        Vec::new(),
    )
    .await;
    let started = assert_recorded_in_progress(&fake, &initial, &r);
    let errors = errors(&r);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("ECS Deployment Not Followed: ")
            && errors[0].contains("AccessDenied"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("The state records this deployment"),
        "{errors:?}"
    );
    assert!(
        String::from_utf8_lossy(&r.private).contains(&started),
        "the failure marker names it"
    );
}

/// A timeout past `Instant`'s range (validation refuses it; apply must not
/// panic should one reach it) waits like any other.
#[tokio::test]
async fn a_huge_timeout_in_the_plan_does_not_panic() {
    let (m, _) = prod_web();
    let fake = FakeEcs::start(m).await;
    let r = apply(
        &fake,
        Value::Null,
        // No digest: nothing to adopt, so a deployment is forced and waited for.
        planned(None, Some("2562047h")),
        Vec::new(),
    )
    .await;
    assert!(errors(&r).is_empty(), "{:?}", errors(&r));
    assert_eq!(
        r.new_state.get("deployment_id"),
        &Value::string(primary_id(&fake))
    );
    assert_eq!(
        r.new_state.get("rollout_state"),
        &Value::string("COMPLETED")
    );
    assert_eq!(fake.count("UpdateService"), 1);
}

/// Ctrl-C while UpdateService is on its way: ECS has started the deployment,
/// so the state must record it (as an interrupted wait) rather than lose it.
#[tokio::test]
async fn an_interrupt_during_update_service_records_the_deployment_ecs_started() {
    let (m, initial) = prod_web();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    // The interrupt comes after ECS took the call and before its answer arrives.
    let fake = FakeEcs::with_hook(m, move |_, op, _| {
        if op == "UpdateService" {
            trigger.cancel();
        }
        None
    })
    .await;
    let mut ctx = ctx(&fake);
    ctx.cancel = cancel;
    let planned = planned(None, None);
    let req = ApplyRequest {
        prior: Value::Null,
        config: config_of(&planned),
        planned,
        planned_private: Vec::new(),
    };
    let began = std::time::Instant::now();
    let r = EcsRedeploy.apply_polling(&ctx, req, fast()).await;
    assert!(began.elapsed() < std::time::Duration::from_secs(5));
    let started = assert_recorded_in_progress(&fake, &initial, &r);
    let errors = errors(&r);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("ECS Deployment Wait Cancelled: ") && errors[0].contains(&started),
        "{errors:?}"
    );
}

/// Ctrl-C while the image check waits on a slow ECS: the apply ends within
/// about a second, deploys nothing, and says the check was interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_the_image_check_stops_it_promptly() {
    let (m, _) = prod_web();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let interrupted = Arc::new(std::sync::OnceLock::new());
    let seen = interrupted.clone();
    let fake = FakeEcs::with_hook(m, move |_, op, _| {
        if op == "DescribeTaskDefinition" {
            trigger.cancel();
            let _ = seen.set(std::time::Instant::now());
            // ECS hangs on this call; the interrupt must not wait for it.
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
        None
    })
    .await;
    let mut ctx = ctx(&fake);
    ctx.cancel = cancel;
    let mut planned = planned(None, None);
    planned.set("verify_images", Value::Bool(true));
    let req = ApplyRequest {
        prior: Value::Null,
        config: config_of(&planned),
        planned,
        planned_private: Vec::new(),
    };
    let r = EcsRedeploy.apply_polling(&ctx, req, fast()).await;
    // Measured from the interrupt: an apply that waited for ECS would take its 10 s.
    let after = interrupted.get().expect("the check reached ECS").elapsed();
    assert!(
        after < std::time::Duration::from_secs(3),
        "ended {after:?} after the interrupt"
    );
    assert_eq!(fake.count("DescribeTaskDefinition"), 1);
    assert_eq!(fake.count("UpdateService"), 0, "nothing is deployed");
    let errors = errors(&r);
    assert!(
        errors.len() == 1 && errors[0].starts_with("Image Verification Cancelled: "),
        "{errors:?}"
    );
    assert!(
        r.new_state.is_null(),
        "a create that deployed nothing leaves no state"
    );
}
