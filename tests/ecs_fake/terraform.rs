//! The scripted ECS through the real terraform CLI: the provider process reaches the fake as
//! it would reach ECS (`aws.endpoints.ecs`), so the failures only the fake can produce (a
//! rollout that fails with stopped tasks, tasks that run another image) are checked as a user
//! meets them: terraform's exit, the diagnostic it prints, and the state it keeps.

use acceptance_tests::diagnostics::{assert_error_contains, flatten};
use acceptance_tests::hcl::{ecs_redeploy_block, quote, terraform_block};
use acceptance_tests::moto::AWS_ENV;
use acceptance_tests::{Mode, Pusher, Registry, Workdir};

use crate::model::{now, Model};
use crate::server::FakeEcs;
use crate::*;

/// A working dir whose provider sends ECS calls to `fake`, with one `stevedore_ecs_redeploy.web`
/// for prod/web deploying `digest`. The images are the fake's own, in no registry: the image
/// check is off.
fn workdir(fake: &FakeEcs, digest: &str) -> Workdir {
    workdir_with(fake, &digest_body(digest))
}

/// The resource's lines for deploying `digest` with the image check off.
fn digest_body(digest: &str) -> String {
    format!(
        "  verify_images = false\n  digest        = {}\n",
        quote(digest)
    )
}

/// A working dir for prod/web on `fake` whose resource has the attribute lines `body`.
fn workdir_with(fake: &FakeEcs, body: &str) -> Workdir {
    let dir = Workdir::with_env(Mode::Installed, &config(fake, body), &AWS_ENV);
    dir.init().success();
    dir
}

fn config(fake: &FakeEcs, body: &str) -> String {
    let provider = format!(
        "provider \"stevedore\" {{\n  aws {{\n    region = \"us-east-1\"\n    endpoints {{\n      \
         ecs = {}\n    }}\n  }}\n}}\n",
        quote(&fake.url)
    );
    terraform_block() + &provider + &ecs_redeploy_block(CLUSTER, SERVICE, body)
}

fn primary_id(fake: &FakeEcs) -> String {
    fake.model(|m| m.service(CLUSTER, SERVICE).deployments[0].id.clone())
}

/// A rollout that ECS fails (circuit breaker, tasks that cannot pull for the platform) fails
/// the apply with the stopped tasks' reason, the service's event and the platform hint, and
/// the state records the deployment that was started, so the next plan deploys again.
#[test]
#[ignore = "acceptance: run make testacc"]
fn a_failed_rollout_fails_the_apply_with_the_stopped_tasks_reasons() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut forced = false;
    let fake = rt.block_on(FakeEcs::with_hook(stalled(), move |m, op, _| {
        forced |= op == "UpdateService";
        if op == "DescribeServices" && forced {
            let svc = m.service(CLUSTER, SERVICE);
            if svc.deployments[0].rollout_state.as_deref() == Some("IN_PROGRESS") {
                let id = svc.deployments[0].id.clone();
                svc.deployments[0].rollout_state = Some("FAILED".into());
                svc.deployments[0].rollout_reason =
                    Some("ECS deployment circuit breaker: tasks failed to start.".into());
                let event = format!(
                    "(service web) (deployment {id}) deployment failed: tasks failed to start."
                );
                svc.events.insert(0, (now(), event));
                m.stopped_task(CLUSTER, SERVICE, &id, PLATFORM_REASON);
            }
        }
        None
    }));
    let tf = workdir(&fake, DIGEST_B);
    let stderr = tf.apply().failure();
    assert_error_contains(
        &stderr,
        "ECS deployment circuit breaker: tasks failed to start.",
    );
    assert_error_contains(
        &stderr,
        "image Manifest does not contain descriptor matching platform 'linux/amd64'",
    );
    assert_error_contains(&stderr, "deployment failed: tasks failed to start.");
    assert_error_contains(&stderr, "platforms = [\"linux/amd64\"]");
    assert_eq!(fake.count("UpdateService"), 1);
    let started = primary_id(&fake);
    let state = tf.resource_values("stevedore_ecs_redeploy.web");
    assert_eq!(state["deployment_id"], started.as_str(), "{state}");
    assert!(
        tf.plan_has_changes(),
        "the failed deployment is deployed again"
    );
}

/// A PRIMARY deployment that already rolls out `digest` is followed, not forced; tasks that end
/// up running another image than `digest` (the task definition still pins the old one) fail
/// the apply naming both digests and the task definition's image, on `digest`.
#[test]
#[ignore = "acceptance: run make testacc"]
fn tasks_running_another_image_fail_the_apply_naming_both_digests() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (m, _) = prod_web();
    let fake = rt.block_on(FakeEcs::start(m));
    let tf = workdir(&fake, DIGEST_A);
    tf.apply().success();
    // The PRIMARY deployment already rolls out DIGEST_A: it is followed, not forced.
    assert_eq!(fake.count("UpdateService"), 0);
    let followed = tf.resource_values("stevedore_ecs_redeploy.web");
    assert_eq!(
        followed["deployment_id"],
        primary_id(&fake).as_str(),
        "{followed}"
    );
    tf.assert_plans_empty();

    tf.write_config(&config(&fake, &digest_body(DIGEST_B)));
    let stderr = tf.apply().failure();
    let flat = flatten(&stderr);
    assert_error_contains(&stderr, "ECS Tasks Run Another Image");
    assert_error_contains(&stderr, &format!("Digest asked for: {DIGEST_B}"));
    assert_error_contains(&stderr, &format!("Digests the tasks run: {DIGEST_A}"));
    assert_error_contains(&stderr, &format!("app: {IMAGE_REPO}@{DIGEST_A}"));
    assert!(
        flat.contains("digest = "),
        "the diagnostic points at `digest`: {flat}"
    );
    assert_eq!(fake.count("UpdateService"), 1);
    let state = tf.resource_values("stevedore_ecs_redeploy.web");
    assert_eq!(
        state["deployment_id"],
        primary_id(&fake).as_str(),
        "{state}"
    );
}

/// Each container image of the task definition is checked (a web app and its sidecar, in a
/// real registry): the sidecar, built for arm64 only, is refused for the Fargate platform,
/// naming its container, and ECS is not touched; with an amd64 sidecar the deploy goes ahead.
#[test]
#[ignore = "acceptance: run make testacc"]
fn every_container_image_is_checked_and_one_bad_image_is_refused() {
    let registry = Registry::start();
    let pusher = Pusher::new(&registry);
    pusher.docker_single("web", "v1", "linux/amd64");
    pusher.docker_single("sidecar", "arm", "linux/arm64");
    pusher.docker_single("sidecar", "amd", "linux/amd64");
    let web = format!("{}/web:v1", registry.address);
    let sidecar = |tag: &str| format!("{}/sidecar:{tag}", registry.address);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    let def = m.register("web", &[("app", &web), ("sidecar", &sidecar("arm"))], None);
    m.add_service(CLUSTER, SERVICE, &def, 1);
    let fake = rt.block_on(FakeEcs::start(m));
    let tf = workdir_with(&fake, "  triggers = { run = \"1\" }\n");
    let stderr = tf.apply().failure();
    let flat = flatten(&stderr);
    assert_error_contains(&stderr, "Container \"sidecar\" of task definition");
    assert_error_contains(&stderr, &sidecar("arm"));
    assert_error_contains(&stderr, "linux/amd64");
    assert!(
        !flat.contains("Container \"app\""),
        "the app image is fine: {flat}"
    );
    assert_eq!(fake.count("UpdateService"), 0, "nothing was deployed");

    fake.model(|m| {
        let def = m.register("web", &[("app", &web), ("sidecar", &sidecar("amd"))], None);
        m.service(CLUSTER, SERVICE).task_definition = def;
    });
    tf.apply().success();
    assert_eq!(fake.count("UpdateService"), 1);
}
