//! `stevedore_ecs_redeploy` next to `aws_ecs_task_definition` +
//! `aws_ecs_service`: the tests play the AWS provider's part with
//! the SDK (RegisterTaskDefinition, then UpdateService with the new revision,
//! which makes ECS start a deployment) and count deployments: exactly one per
//! digest change. Then the proof that the tasks run the digest.

use stevedore::diag::Severity;
use stevedore::resource::ApplyResponse;
use stevedore::value::{AttrPath, Value};

use crate::apply::{apply, errors, planned};
use crate::model::Model;
use crate::registry_fixture::{Entry, Flavor, TestRegistry};
use crate::server::FakeEcs;
use crate::*;

/// What `aws_ecs_service` does after `aws_ecs_task_definition` registered a
/// revision with `image`: UpdateService with it (not forced). Returns the id
/// of the deployment ECS started.
async fn aws_provider_switches_to(fake: &FakeEcs, image: &str) -> String {
    let c = client(fake);
    let container = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("app")
        .image(image)
        .build();
    let registered = c
        .register_task_definition()
        .family("web")
        .container_definitions(container)
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let arn = registered
        .task_definition()
        .and_then(|d| d.task_definition_arn())
        .expect("arn");
    let updated = c
        .update_service()
        .cluster(CLUSTER)
        .service(SERVICE)
        .task_definition(arn)
        .send()
        .await
        .expect("UpdateService");
    let primary = &updated.service().expect("service").deployments()[0];
    primary.id().expect("deployment id").to_string()
}

fn deployments_started(fake: &FakeEcs) -> usize {
    fake.model(|m: &mut Model| m.deployments_started)
}

fn forced(fake: &FakeEcs) -> usize {
    fake.requests("UpdateService")
        .iter()
        .filter(|b| b["forceNewDeployment"] == true)
        .count()
}

fn warnings(r: &ApplyResponse) -> Vec<String> {
    r.diags
        .0
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .collect()
}

/// Applies `digest` over the previous apply's state, as the next `terraform apply` would.
async fn next_apply(fake: &FakeEcs, prior: Option<&ApplyResponse>, digest: &str) -> ApplyResponse {
    let (state, private) = match prior {
        Some(r) => (r.new_state.clone(), r.private.clone()),
        None => (Value::Null, Vec::new()),
    };
    apply(fake, state, planned(Some(digest), None), private).await
}

fn assert_followed(r: &ApplyResponse, id: &str, digest: &str) {
    assert!(errors(r).is_empty(), "{:?}", r.diags);
    assert_eq!(r.new_state.get("deployment_id"), &Value::string(id));
    assert_eq!(
        r.new_state.get("rollout_state"),
        &Value::string("COMPLETED")
    );
    assert_eq!(
        r.new_state.get("running_image_digests"),
        &Value::string_list([digest])
    );
}

#[tokio::test]
async fn a_task_definition_pinning_the_digest_gets_one_deployment_per_change() {
    let (m, initial) = prod_web();
    let fake = FakeEcs::start(m).await;
    // Create over a service that already runs DIGEST_A: nothing to start.
    let r1 = next_apply(&fake, None, DIGEST_A).await;
    assert_followed(&r1, &initial, DIGEST_A);
    assert_eq!(deployments_started(&fake), 0);

    let theirs = aws_provider_switches_to(&fake, &format!("{IMAGE_REPO}@{DIGEST_B}")).await;
    let r2 = next_apply(&fake, Some(&r1), DIGEST_B).await;
    assert_followed(&r2, &theirs, DIGEST_B);
    assert_eq!(
        (deployments_started(&fake), forced(&fake)),
        (1, 0),
        "{:?}",
        fake.calls()
    );

    let digest_c = format!("sha256:{}", "c".repeat(64));
    let theirs = aws_provider_switches_to(&fake, &format!("{IMAGE_REPO}@{digest_c}")).await;
    let r3 = next_apply(&fake, Some(&r2), &digest_c).await;
    assert_followed(&r3, &theirs, &digest_c);
    assert_eq!((deployments_started(&fake), forced(&fake)), (2, 0));
}

/// A new tag per release (`web:v1`, `web:v2`) is resolved through the
/// registry; one mutable tag (`web:latest`) changes no task definition, so
/// stevedore forces the one deployment.
#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn a_task_definition_using_a_tag_gets_one_deployment_per_change() {
    let registry = TestRegistry::start().await;
    let tag = |t: &str| format!("{}/web:{t}", registry.host);
    let v1 = registry
        .push_image("web", Some("v1"), Flavor::Docker, "linux/amd64")
        .await
        .digest;
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    m.tag_digests.insert(tag("v1"), v1.clone());
    let def = m.register("web", &[("app", &tag("v1"))], None);
    m.add_service(CLUSTER, SERVICE, &def, 1);
    let fake = FakeEcs::start(m).await;

    // Created with the service's rollout of v1 already running: with nothing
    // recorded only a pinned digest is trusted, so one deployment is forced.
    let r1 = next_apply(&fake, None, &v1).await;
    assert!(errors(&r1).is_empty(), "{:?}", r1.diags);
    assert_eq!((deployments_started(&fake), forced(&fake)), (1, 1));

    let v2 = registry
        .push_image("web", Some("v2"), Flavor::Oci, "linux/amd64")
        .await
        .digest;
    fake.model(|m| m.tag_digests.insert(tag("v2"), v2.clone()));
    let theirs = aws_provider_switches_to(&fake, &tag("v2")).await;
    let r2 = next_apply(&fake, Some(&r1), &v2).await;
    assert_followed(&r2, &theirs, &v2);
    assert_eq!(
        (deployments_started(&fake), forced(&fake)),
        (2, 1),
        "{:?}",
        fake.calls()
    );

    // `latest` moved under a task definition that names it: nothing changed in ECS.
    let v3 = registry
        .push_image("web", Some("latest"), Flavor::Docker, "linux/amd64")
        .await
        .digest;
    fake.model(|m| m.tag_digests.insert(tag("latest"), v3.clone()));
    let _ = aws_provider_switches_to(&fake, &tag("latest")).await;
    let r3 = next_apply(&fake, Some(&r2), &v3).await;
    assert!(errors(&r3).is_empty(), "{:?}", r3.diags);
    assert_eq!(
        (deployments_started(&fake), forced(&fake)),
        (3, 1),
        "followed theirs"
    );
    let v4 = registry
        .push_image("web", Some("latest"), Flavor::Oci, "linux/amd64")
        .await
        .digest;
    fake.model(|m| m.tag_digests.insert(tag("latest"), v4.clone()));
    let r4 = next_apply(&fake, Some(&r3), &v4).await;
    assert!(errors(&r4).is_empty(), "{:?}", r4.diags);
    assert_eq!(
        (deployments_started(&fake), forced(&fake)),
        (4, 2),
        "forced the one deployment"
    );
    assert_eq!(
        r4.new_state.get("running_image_digests"),
        &Value::string_list([v4.as_str()])
    );
}

#[tokio::test]
async fn an_adopted_deployment_that_fails_is_reported_and_recorded() {
    let (mut m, initial) = prod_web();
    m.rollout_polls = 100;
    let mut polls = 0;
    let fake = FakeEcs::with_hook(m, move |m, op, _| {
        if op == "DescribeServices" && m.deployments_started == 1 {
            polls += 1;
            if polls == 3 {
                let d = &mut m.service(CLUSTER, SERVICE).deployments[0];
                d.rollout_state = Some("FAILED".into());
                d.rollout_reason =
                    Some("ECS deployment circuit breaker: tasks failed to start.".into());
            }
        }
        None
    })
    .await;
    let prior = next_apply(&fake, None, DIGEST_A).await;
    assert_eq!(
        prior.new_state.get("deployment_id"),
        &Value::string(&initial)
    );
    let theirs = aws_provider_switches_to(&fake, &format!("{IMAGE_REPO}@{DIGEST_B}")).await;
    let r = next_apply(&fake, Some(&prior), DIGEST_B).await;
    let errors = errors(&r);
    assert!(
        errors.len() == 1
            && errors[0].starts_with("ECS Deployment Failed")
            && errors[0].contains(&theirs),
        "{errors:?}"
    );
    assert_eq!(r.new_state.get("deployment_id"), &Value::string(&theirs));
    assert_eq!(r.new_state.get("rollout_state"), &Value::string("FAILED"));
    assert_eq!(forced(&fake), 0);
    assert!(
        String::from_utf8_lossy(&r.private).contains(&theirs),
        "next plan redeploys"
    );
}

#[tokio::test]
async fn tasks_running_another_image_fail_naming_both_digests_and_the_image() {
    let (m, initial) = prod_web();
    let fake = FakeEcs::start(m).await;
    let prior = next_apply(&fake, None, DIGEST_A).await;
    // The image was rebuilt (DIGEST_B) but the task definition still pins DIGEST_A.
    let r = next_apply(&fake, Some(&prior), DIGEST_B).await;
    assert_eq!(forced(&fake), 1);
    let errs = errors(&r);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert!(e.starts_with("ECS Tasks Run Another Image: "), "{e}");
    assert!(e.contains(&format!("Digest asked for: {DIGEST_B}")), "{e}");
    assert!(
        e.contains(&format!("Digests the tasks run: {DIGEST_A}")),
        "{e}"
    );
    assert!(
        e.contains(&format!("uses: app: {IMAGE_REPO}@{DIGEST_A}")),
        "{e}"
    );
    assert_eq!(
        r.diags
            .0
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap()
            .attribute,
        Some(AttrPath::attr("digest"))
    );
    let started = r.new_state.get("deployment_id").clone();
    assert!(
        started != Value::string(&initial) && started.as_str().is_some(),
        "records the deployment: {started:?}"
    );
    assert!(String::from_utf8_lossy(&r.private).contains("failed_deployment"));
}

#[tokio::test]
async fn tasks_reporting_no_digest_warn_and_pass() {
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    // A tag the model resolves to nothing, on a registry nobody listens to.
    let def = m.register("web", &[("app", "127.0.0.1:1/web:latest")], None);
    m.add_service(CLUSTER, SERVICE, &def, 1);
    let fake = FakeEcs::start(m).await;
    let r = next_apply(&fake, None, DIGEST_A).await;
    assert!(errors(&r).is_empty(), "{:?}", r.diags);
    let w = warnings(&r);
    assert!(
        w.len() == 1 && w[0].starts_with("Running Image Not Proven") && w[0].contains(DIGEST_A),
        "{w:?}"
    );
    assert_eq!(forced(&fake), 1);
}

/// ECS may report the platform manifest a task pulled rather than the index
/// the digest names: any platform manifest of the index counts.
#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn a_platform_manifest_of_an_index_digest_counts_as_running_it() {
    let registry = TestRegistry::start().await;
    let (index, parts) = registry
        .push_index(
            "web",
            "multi",
            Flavor::Oci,
            &[Entry::Image("linux/amd64"), Entry::Image("linux/arm64")],
        )
        .await;
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    let def = m.register(
        "web",
        &[("app", &format!("{}/web@{}", registry.host, parts[0].digest))],
        None,
    );
    m.add_service(CLUSTER, SERVICE, &def, 1);
    let fake = FakeEcs::start(m).await;
    let r = next_apply(&fake, None, &index.digest).await;
    assert!(errors(&r).is_empty(), "{:?}", r.diags);
    assert_eq!(
        r.new_state.get("running_image_digests"),
        &Value::string_list([parts[0].digest.as_str()])
    );

    // Pinning a manifest outside the index is still caught, listing the index's platforms.
    // Docker media types: not byte-identical to the index's OCI amd64 entry.
    let other = registry
        .push_image("web", None, Flavor::Docker, "linux/amd64")
        .await
        .digest;
    assert!(!parts.iter().any(|p| p.digest == other));
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    let def = m.register(
        "web",
        &[("app", &format!("{}/web@{other}", registry.host))],
        None,
    );
    m.add_service(CLUSTER, SERVICE, &def, 1);
    let fake = FakeEcs::start(m).await;
    let r = next_apply(&fake, None, &index.digest).await;
    let errs = errors(&r);
    assert!(
        errs.len() == 1
            && errs[0].contains("its platform manifests are")
            && errs[0].contains(&parts[1].digest),
        "{errs:?}"
    );
}
