//! `resource "stevedore_ecs_redeploy"` against moto's ECS (and a real registry for the image
//! check), through the real terraform CLI. moto starts no tasks: these tests prove the
//! deployments, plans, state and import; task failures are covered in tests/ecs_fake.rs.

use acceptance_tests::diagnostics::{assert_error_contains, assert_error_names_attribute};
use acceptance_tests::hcl::{ecs_redeploy_block, terraform_block};
use acceptance_tests::moto::{Moto, Service, AWS_ENV};
use acceptance_tests::{acc_test, Mode, Pusher, Registry, Workdir};
use serde_json::Value;

const NGINX: &str = "public.ecr.aws/nginx/nginx:1.27";
const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A config with one `stevedore_ecs_redeploy.web` for `s`; `body` adds attribute lines.
fn config(moto: &Moto, s: &Service, body: &str) -> String {
    terraform_block() + &moto.provider_block() + &ecs_redeploy_block(&s.cluster, &s.service, body)
}

fn workdir(mode: Mode, tf: &str) -> Workdir {
    let dir = Workdir::with_env(mode, tf, &AWS_ENV);
    dir.init().success();
    dir
}

/// The resource's attributes in state (`Null` when it is not there).
fn resource(tf: &Workdir) -> Value {
    tf.resource_values("stevedore_ecs_redeploy.web")
}

/// `plan -detailed-exitcode`'s verdict: Some(true) for changes, Some(false) for none.
fn plan_has_changes(tf: &Workdir) -> (bool, String) {
    let run = tf.run(&["plan", "-detailed-exitcode"]);
    assert!(matches!(run.code, Some(0) | Some(2)), "plan failed\n{run}");
    (run.code == Some(2), run.stdout)
}

acc_test!(
    deploys_on_digest_change_imports_and_leaves_the_service,
    |mode| {
        let moto = Moto::start();
        let svc = moto.fargate_service("prod", "web", NGINX, "X86_64", 1);
        let initial = moto.primary_deployment_id(&svc);

        let tf = workdir(
            mode,
            &config(
                &moto,
                &svc,
                &format!("  digest = \"{DIGEST_A}\"\n  verify_images = false\n"),
            ),
        );
        tf.apply().success();
        let first = resource(&tf);
        let first_id = first["deployment_id"]
            .as_str()
            .expect("deployment_id")
            .to_string();
        assert_ne!(first_id, initial, "apply must start a new deployment");
        assert_eq!(first_id, moto.primary_deployment_id(&svc));
        assert_eq!(first["id"], "prod/web");
        assert_eq!(first["rollout_state"], "COMPLETED");
        assert_eq!(first["running_count"], 1);
        assert_eq!(
            first["task_definition_arn"],
            svc.task_definition_arn.as_str()
        );
        assert_eq!(first["wait_for_steady_state"], true);
        tf.assert_plans_empty();

        tf.write_config(&config(
            &moto,
            &svc,
            &format!("  digest = \"{DIGEST_B}\"\n  verify_images = false\n"),
        ));
        let plan = tf.plan_json();
        let actions = &plan["resource_changes"][0]["change"]["actions"];
        assert_eq!(actions, &serde_json::json!(["update"]), "{plan:#}");
        tf.apply().success();
        let second_id = resource(&tf)["deployment_id"]
            .as_str()
            .expect("deployment_id")
            .to_string();
        assert_ne!(
            second_id, first_id,
            "a new digest must start another deployment"
        );
        assert_eq!(second_id, moto.primary_deployment_id(&svc));
        tf.assert_plans_empty();

        // Only wait_for_steady_state changes: an in-place update that deploys nothing.
        tf.write_config(&config(&moto, &svc, &format!("  digest = \"{DIGEST_B}\"\n  verify_images = false\n  wait_for_steady_state = false\n")));
        tf.apply().success();
        assert_eq!(resource(&tf)["deployment_id"], second_id.as_str());
        assert_eq!(moto.primary_deployment_id(&svc), second_id);
        tf.assert_plans_empty();

        // Import into a fresh state; a config without digest/triggers then plans nothing.
        let imported = workdir(mode, &config(&moto, &svc, ""));
        imported
            .import("stevedore_ecs_redeploy.web", "prod/web")
            .success();
        let state = resource(&imported);
        assert_eq!(state["deployment_id"], second_id.as_str());
        assert_eq!(state["id"], "prod/web");
        imported.assert_plans_empty();

        tf.destroy().success();
        assert_eq!(
            moto.describe(&svc)["status"],
            "ACTIVE",
            "destroy must leave the service"
        );
        assert_eq!(moto.primary_deployment_id(&svc), second_id);
    }
);

#[test]
#[ignore = "acceptance: run make testacc"]
fn wrong_platform_image_is_refused_before_deploying() {
    let registry = Registry::start();
    let arm = Pusher::new(&registry).docker_single("web", "arm", "linux/arm64");
    let amd = Pusher::new(&registry).docker_single("api", "amd", "linux/amd64");
    let moto = Moto::start();
    let web = moto.fargate_service("prod", "web", &arm.reference, "X86_64", 1);
    let before = moto.primary_deployment_id(&web);

    let tf = workdir(
        Mode::Installed,
        &config(&moto, &web, &format!("  digest = \"{DIGEST_A}\"\n")),
    );
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, "Image Does Not Match Task Platform");
    assert_error_contains(
        &stderr,
        &format!(
            "image {} does not provide linux/amd64; it provides linux/arm64",
            arm.reference
        ),
    );
    assert_error_contains(&stderr, "Container \"app\"");
    assert_error_names_attribute(&stderr, "digest");
    assert_eq!(
        moto.primary_deployment_id(&web),
        before,
        "UpdateService must not have been called"
    );
    assert_eq!(resource(&tf), Value::Null, "nothing was created");

    // The same check passes for an amd64 image, and the deployment goes ahead.
    let api = moto.fargate_service("prod", "api", &amd.reference, "X86_64", 1);
    let tf = workdir(
        Mode::Installed,
        &config(&moto, &api, &format!("  digest = \"{DIGEST_A}\"\n")),
    );
    tf.apply().success();
    assert_eq!(
        resource(&tf)["deployment_id"],
        moto.primary_deployment_id(&api).as_str()
    );
    tf.assert_plans_empty();
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn service_deleted_out_of_band_plans_a_create() {
    let moto = Moto::start();
    let svc = moto.fargate_service("prod", "web", NGINX, "X86_64", 1);
    let tf = workdir(
        Mode::Installed,
        &config(&moto, &svc, "  verify_images = false\n"),
    );
    tf.apply().success();
    moto.delete_service(&svc);
    let (changes, stdout) = plan_has_changes(&tf);
    assert!(changes, "{stdout}");
    assert!(
        stdout.contains("stevedore_ecs_redeploy.web will be created"),
        "{stdout}"
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn failed_create_is_recorded_tainted_and_replaced() {
    let moto = Moto::start();
    // desiredCount 2 while moto runs 1 task: the rollout never completes.
    let svc = moto.fargate_service("prod", "slow", NGINX, "X86_64", 2);
    let tf = workdir(
        Mode::Installed,
        &config(
            &moto,
            &svc,
            "  verify_images = false\n  timeouts {\n    create = \"2s\"\n  }\n",
        ),
    );
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, "ECS Deployment Timed Out");
    let state = resource(&tf);
    assert_eq!(
        state["deployment_id"],
        moto.primary_deployment_id(&svc).as_str(),
        "state records the started deployment"
    );
    assert_eq!(state["rollout_state"], "IN_PROGRESS");
    let (changes, stdout) = plan_has_changes(&tf);
    assert!(
        changes && stdout.contains("is tainted, so must be replaced"),
        "{stdout}"
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn failed_update_is_recorded_and_the_next_plan_deploys_again() {
    let moto = Moto::start();
    let svc = moto.fargate_service("prod", "slow", NGINX, "X86_64", 2);
    let tf = workdir(Mode::Installed, &config(&moto, &svc, &format!("  digest = \"{DIGEST_A}\"\n  verify_images = false\n  wait_for_steady_state = false\n")));
    tf.apply().success();
    assert_eq!(resource(&tf)["rollout_state"], "IN_PROGRESS");
    tf.assert_plans_empty();

    let waiting = format!("  digest = \"{DIGEST_B}\"\n  verify_images = false\n  timeouts {{\n    update = \"2s\"\n  }}\n");
    tf.write_config(&config(&moto, &svc, &waiting));
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, "ECS Deployment Timed Out");
    let state = resource(&tf);
    assert_eq!(
        state["deployment_id"],
        moto.primary_deployment_id(&svc).as_str()
    );
    assert_eq!(state["digest"], DIGEST_B);
    let (changes, stdout) = plan_has_changes(&tf);
    assert!(
        changes && stdout.contains("will be updated in-place"),
        "{stdout}"
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn malformed_timeout_is_blamed_on_its_attribute() {
    let moto = Moto::start();
    let svc = Service {
        cluster: "prod".into(),
        service: "web".into(),
        task_definition_arn: String::new(),
    };
    let tf = workdir(
        Mode::Installed,
        &config(&moto, &svc, "  timeouts {\n    update = \"15x\"\n  }\n"),
    );
    let stderr = tf.plan().failure();
    assert_error_contains(&stderr, "invalid duration \"15x\": unknown unit \"x\"");
    assert_error_names_attribute(&stderr, "update");
}
