//! `stevedore_ecs_redeploy` paths through the real terraform CLI beyond the main flow in
//! ecs_redeploy.rs: `triggers`, the image check refusing an image it cannot find or read
//! (before any UpdateService), a refresh while ECS errors, and Ctrl-C mid-rollout.

use std::time::{Duration, Instant};

use acceptance_tests::diagnostics::{assert_error_contains, assert_error_names_attribute, flatten};
use acceptance_tests::hcl::{ecs_redeploy_block, quote, terraform_block};
use acceptance_tests::moto::{Moto, Service, AWS_ENV};
use acceptance_tests::refusing::Refusing;
use acceptance_tests::{acc_test, sha256_digest, Mode, Pusher, Registry, Workdir};
use serde_json::{json, Value};

const NGINX: &str = "public.ecr.aws/nginx/nginx:1.27";
const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ADDRESS: &str = "stevedore_ecs_redeploy.web";

fn config(provider: &str, s: &Service, body: &str) -> String {
    terraform_block() + provider + &ecs_redeploy_block(&s.cluster, &s.service, body)
}

/// A working dir with the AWS variables moto needs and an empty docker config (no
/// credentials of the developer's own can reach a registry), after `init`.
fn workdir(mode: Mode, tf: &str, docker_config: &tempfile::TempDir) -> Workdir {
    let mut env = AWS_ENV.to_vec();
    env.push(("DOCKER_CONFIG", docker_config.path().to_str().unwrap()));
    let dir = Workdir::with_env(mode, tf, &env);
    dir.init().success();
    dir
}

fn deployment_id(tf: &Workdir) -> String {
    let state = tf.resource_values(ADDRESS);
    match state["deployment_id"].as_str() {
        Some(id) => id.to_string(),
        None => panic!("no deployment_id in state: {state:#}"),
    }
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn a_trigger_change_deploys_and_an_unchanged_one_plans_nothing() {
    let moto = Moto::start();
    let svc = moto.fargate_service("prod", "web", NGINX, "X86_64", 1);
    let body = |release: &str| {
        format!(
            "  verify_images = false\n  triggers = {{ release = {} }}\n",
            quote(release)
        )
    };
    let empty = tempfile::tempdir().unwrap();
    let tf = workdir(
        Mode::Installed,
        &config(&moto.provider_block(), &svc, &body("1")),
        &empty,
    );
    tf.apply().success();
    let first = deployment_id(&tf);
    assert_eq!(first, moto.primary_deployment_id(&svc));
    tf.assert_plans_empty();

    tf.write_config(&config(&moto.provider_block(), &svc, &body("2")));
    let plan = tf.plan_json();
    let change = &plan["resource_changes"][0]["change"];
    assert_eq!(change["actions"], json!(["update"]), "{plan:#}");
    assert_eq!(change["after"]["triggers"], json!({ "release": "2" }));
    assert_eq!(change["after_unknown"]["deployment_id"], true, "{plan:#}");
    tf.apply().success();
    let second = deployment_id(&tf);
    assert_ne!(second, first, "a new trigger value must start a deployment");
    assert_eq!(second, moto.primary_deployment_id(&svc));
    assert_eq!(
        tf.resource_values(ADDRESS)["triggers"],
        json!({ "release": "2" })
    );
    tf.assert_plans_empty();
}

/// Applies a redeploy of a service whose task definition runs `image`, which the check
/// must refuse: returns the apply's stderr after checking nothing was deployed.
fn refused_before_deploying(provider: &str, moto: &Moto, image: &str) -> String {
    let svc = moto.fargate_service("prod", "web", image, "X86_64", 1);
    let before = moto.primary_deployment_id(&svc);
    let empty = tempfile::tempdir().unwrap();
    let body = format!("  digest = \"{DIGEST_A}\"\n");
    let tf = workdir(Mode::Installed, &config(provider, &svc, &body), &empty);
    let stderr = tf.apply().failure();
    assert_error_contains(&stderr, "Nothing was deployed");
    assert_error_contains(
        &stderr,
        &format!(
            "Container \"app\" of task definition {}",
            svc.task_definition_arn
        ),
    );
    assert_error_names_attribute(&stderr, "digest");
    assert_eq!(
        moto.primary_deployment_id(&svc),
        before,
        "UpdateService must not have been called"
    );
    assert_eq!(
        tf.resource_values(ADDRESS),
        Value::Null,
        "nothing was created"
    );
    stderr
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn an_image_missing_from_its_registry_is_refused_before_deploying() {
    let registry = Registry::start();
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    let missing = format!("{}@{}", pushed.repository, sha256_digest(b"never pushed"));
    let moto = Moto::start();
    let stderr = refused_before_deploying(&moto.provider_block(), &moto, &missing);
    assert_error_contains(&stderr, "Error: Task Definition Image Not Found");
    assert_error_contains(
        &stderr,
        &format!("uses {missing}: {missing} was not found in the registry"),
    );
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn an_image_the_registry_will_not_serve_us_is_refused_before_deploying() {
    let registry = Registry::with_auth("ci", "s3cret-ecs-8812");
    let pushed = Pusher::new(&registry).docker_single("web", "v1", "linux/amd64");
    let moto = Moto::start();
    let stderr = refused_before_deploying(&moto.provider_block(), &moto, &pushed.reference);
    assert_error_contains(&stderr, "Error: Task Definition Image Not Readable");
    assert_error_contains(
        &stderr,
        &format!("registry {} refused the credentials", registry.address),
    );
    assert_error_contains(&stderr, "check registry_auth");

    // With the registry's credentials the same check passes and the deployment goes ahead.
    let svc = moto.fargate_service("prod", "api", &pushed.reference, "X86_64", 1);
    let auth = format!(
        "  registry_auth {{\n    address  = {}\n    username = \"ci\"\n    password = \"s3cret-ecs-8812\"\n  }}\n",
        quote(&registry.address)
    );
    let empty = tempfile::tempdir().unwrap();
    let body = format!("  digest = \"{DIGEST_A}\"\n");
    let tf = workdir(
        Mode::Installed,
        &config(&moto.provider_block_with(&auth), &svc, &body),
        &empty,
    );
    tf.apply().success();
    assert_eq!(deployment_id(&tf), moto.primary_deployment_id(&svc));
}

/// Plans (with refresh) and refreshes while ECS cannot answer: both succeed with the
/// "not refreshed" warning giving `cause` then `detail` when there is one (and no raw SDK
/// dump), and the state is what it was.
fn refresh_keeps_state(tf: &Workdir, before: &Value, cause: &str, detail: Option<&str>) {
    let plan = tf.run(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "a refresh failure is no change\n{plan}");
    let shown = flatten(&format!("{}{}", plan.stdout, plan.stderr));
    assert!(
        shown.contains("Warning: ECS Service Not Refreshed"),
        "{plan}"
    );
    assert!(shown.contains("The state is kept as it was"), "{plan}");
    let said = format!("ECS DescribeServices failed: {cause}");
    assert!(shown.contains(&said), "{plan}");
    if let Some(detail) = detail {
        let after = &shown[shown.find(&said).unwrap_or_default()..];
        assert!(after.contains(detail), "{detail:?} after the cause\n{plan}");
    }
    for dump in ["SdkBody", "ServiceError {", "DispatchFailure("] {
        assert!(
            !shown.contains(dump),
            "the warning dumps SDK internals\n{plan}"
        );
    }
    tf.run(&["apply", "-refresh-only", "-auto-approve"])
        .success();
    assert_eq!(&tf.resource_values(ADDRESS), before, "{cause}");
}

#[test]
#[ignore = "acceptance: run make testacc"]
fn refresh_while_ecs_errors_warns_and_keeps_the_state() {
    let mut moto = Moto::start();
    let svc = moto.fargate_service("prod", "web", NGINX, "X86_64", 1);
    let body = "  verify_images = false\n";
    let empty = tempfile::tempdir().unwrap();
    let tf = workdir(
        Mode::Installed,
        &config(&moto.provider_block(), &svc, body),
        &empty,
    );
    tf.apply().success();
    let before = tf.resource_values(ADDRESS);
    assert!(before["deployment_id"].is_string(), "{before:#}");

    // ECS answers, but refuses: credentials without ecs:DescribeServices.
    let refusing = Refusing::start("AccessDeniedException");
    let provider = moto.provider_block().replace(&moto.url, &refusing.url);
    tf.write_config(&config(&provider, &svc, body));
    refresh_keeps_state(
        &tf,
        &before,
        "AccessDeniedException: refused by the test endpoint",
        None,
    );
    assert!(refusing.requests() > 0, "the refresh never asked ECS");

    // ECS does not answer at all.
    tf.write_config(&config(&moto.provider_block(), &svc, body));
    moto.stop();
    refresh_keeps_state(&tf, &before, "dispatch failure", Some("Connection refused"));
}

// Ctrl-C while the apply follows a rollout that will not complete (desiredCount 2, moto
// runs one task): terraform asks the provider to stop, the apply ends long before its
// 10m timeout, and the state records the deployment that was started. Installed, the
// provider gets the SIGINT too (same process group) and must leave it to terraform;
// attached, only StopProvider reaches it.
acc_test!(
    ctrl_c_mid_rollout_stops_promptly_and_records_the_deployment,
    |mode| {
        let moto = Moto::start();
        let svc = moto.fargate_service("prod", "slow", NGINX, "X86_64", 2);
        let initial = moto.primary_deployment_id(&svc);
        let body = "  verify_images = false\n  timeouts {\n    create = \"10m\"\n  }\n";
        let tf = Workdir::logged(mode, &config(&moto.provider_block(), &svc, body), &AWS_ENV);
        tf.init().success();

        let mut apply = tf.spawn(&["apply", "-auto-approve"]);
        // Logged by the provider once it polls the deployment UpdateService started.
        tf.wait_for_log(
            &mut apply,
            "ECS deployment not done yet",
            Duration::from_secs(120),
        );
        let started = moto.primary_deployment_id(&svc);
        assert_ne!(started, initial, "the apply forced a deployment");
        let interrupted = Instant::now();
        apply.interrupt();
        let run = apply.wait();
        let took = interrupted.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "the apply took {took:?} to stop\n{run}"
        );
        let stderr = run.failure();
        assert_error_contains(&stderr, "Error: ECS Deployment Wait Cancelled");
        assert_error_contains(&stderr, &started);

        let state = tf.resource_values(ADDRESS);
        assert_eq!(state["deployment_id"], started.as_str(), "{state:#}");
        assert_eq!(state["rollout_state"], "IN_PROGRESS", "{state:#}");
        assert_eq!(
            moto.primary_deployment_id(&svc),
            started,
            "nothing else was deployed"
        );
        let plan = tf.run(&["plan", "-detailed-exitcode"]);
        assert_eq!(plan.code, Some(2), "{plan}");
        assert!(
            plan.stdout.contains("is tainted, so must be replaced"),
            "{plan}"
        );
    }
);
