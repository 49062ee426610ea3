//! The image check's platform for services whose task definition names no
//! runtimePlatform: Fargate means LINUX/X86_64, EC2 and capacity providers
//! mean the CPU of the cluster's container instances.
//! Images live in a real docker-registry; ECS is the fake.

use stevedore::diag::Severity;
use stevedore::value::Value;

use crate::apply::{apply, errors, planned};
use crate::model::{Instance, Model};
use crate::registry_fixture::{Flavor, TestRegistry};
use crate::server::{aws_error, FakeEcs};
use crate::*;

/// `prod/web` running one arm64-only image with no runtimePlatform, launched
/// as `launch_type` (or on the capacity providers), on instances of `archs`.
async fn setup(
    registry: &TestRegistry,
    launch_type: Option<&str>,
    providers: &[&str],
    archs: &[Option<&str>],
) -> FakeEcs {
    FakeEcs::start(model(registry, launch_type, providers, archs).await).await
}

async fn model(
    registry: &TestRegistry,
    launch_type: Option<&str>,
    providers: &[&str],
    archs: &[Option<&str>],
) -> Model {
    registry
        .push_image("web", Some("v1"), Flavor::Docker, "linux/arm64")
        .await;
    let image = format!("{}/web:v1", registry.host);
    let mut m = Model::default();
    m.add_cluster(CLUSTER);
    let def = m.register("web", &[("app", &image)], None);
    m.add_service(CLUSTER, SERVICE, &def, 1);
    let svc = m.service(CLUSTER, SERVICE);
    svc.launch_type = launch_type.map(str::to_string);
    svc.capacity_providers = providers.iter().map(|p| p.to_string()).collect();
    for (i, arch) in archs.iter().enumerate() {
        m.add_cluster(CLUSTER).instances.push(Instance {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:container-instance/{CLUSTER}/i{i}"),
            cpu_architecture: arch.map(str::to_string),
        });
    }
    m
}

fn verifying() -> Value {
    let mut p = planned(None, None);
    p.set("verify_images", Value::Bool(true));
    p
}

fn warnings(r: &stevedore::resource::ApplyResponse) -> Vec<String> {
    r.diags
        .0
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .collect()
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn ec2_on_arm64_instances_accepts_an_arm64_image() {
    let registry = TestRegistry::start().await;
    for (launch_type, providers) in [(Some("EC2"), vec![]), (None, vec!["arm-asg"])] {
        let fake = setup(
            &registry,
            launch_type,
            &providers,
            &[Some("arm64"), Some("arm64")],
        )
        .await;
        let r = apply(&fake, Value::Null, verifying(), Vec::new()).await;
        assert!(
            errors(&r).is_empty() && warnings(&r).is_empty(),
            "{:?}",
            r.diags
        );
        assert_eq!(fake.count("UpdateService"), 1);
        let asked = fake.requests("DescribeContainerInstances");
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0]["cluster"], CLUSTER);
        assert_eq!(
            asked[0]["containerInstances"].as_array().map(Vec::len),
            Some(2)
        );
    }
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn ec2_on_x86_instances_refuses_the_arm64_image_naming_where_the_platform_came_from() {
    let registry = TestRegistry::start().await;
    let fake = setup(&registry, Some("EXTERNAL"), &[], &[Some("x86_64")]).await;
    let r = apply(&fake, Value::Null, verifying(), Vec::new()).await;
    let errors = errors(&r);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("Image Does Not Match Task Platform"),
        "{errors:?}"
    );
    assert!(
        errors[0]
            .contains("container instances report ecs.cpu-architecture x86_64, so linux/amd64"),
        "{errors:?}"
    );
    assert_eq!(fake.count("UpdateService"), 0, "nothing deployed");
}

#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn fargate_without_runtime_platform_stays_linux_amd64() {
    let registry = TestRegistry::start().await;
    for (launch_type, providers) in [(Some("FARGATE"), vec![]), (None, vec!["FARGATE_SPOT"])] {
        let fake = setup(&registry, launch_type, &providers, &[Some("arm64")]).await;
        let r = apply(&fake, Value::Null, verifying(), Vec::new()).await;
        let errors = errors(&r);
        assert!(
            errors.len() == 1 && errors[0].contains("runtimePlatform LINUX/X86_64, so linux/amd64"),
            "{errors:?}"
        );
        assert_eq!(fake.count("ListContainerInstances"), 0);
        assert_eq!(fake.count("UpdateService"), 0);
    }
}

/// No instances, mixed CPUs, an instance without the attribute, an ECS
/// error: the platform can't be known, so warn and deploy.
#[tokio::test]
#[ignore = "acceptance: starts docker-registry; run make testacc"]
async fn an_unknowable_instance_architecture_warns_and_deploys() {
    let registry = TestRegistry::start().await;
    let cases: [(&[Option<&str>], &str); 3] = [
        (&[], "has no container instances"),
        (
            &[Some("arm64"), Some("x86_64")],
            "different CPUs (arm64, x86_64)",
        ),
        (&[Some("arm64"), None], "reports no ecs.cpu-architecture"),
    ];
    for (archs, why) in cases {
        let fake = setup(&registry, Some("EC2"), &[], archs).await;
        let r = apply(&fake, Value::Null, verifying(), Vec::new()).await;
        assert!(errors(&r).is_empty(), "{why}: {:?}", r.diags);
        let warnings = warnings(&r);
        assert_eq!(warnings.len(), 1, "{why}: {warnings:?}");
        assert!(
            warnings[0].starts_with("Image Platform Not Checked") && warnings[0].contains(why),
            "{warnings:?}"
        );
        assert_eq!(fake.count("UpdateService"), 1, "{why}");
    }
    let m = model(&registry, Some("EC2"), &[], &[Some("arm64")]).await;
    let fake = FakeEcs::with_hook(m, |_, op, _| {
        (op == "ListContainerInstances").then(|| {
            aws_error(
                "AccessDeniedException",
                "not allowed to ecs:ListContainerInstances",
            )
        })
    })
    .await;
    let r = apply(&fake, Value::Null, verifying(), Vec::new()).await;
    let warnings = warnings(&r);
    assert!(errors(&r).is_empty(), "{:?}", r.diags);
    assert!(
        warnings.len() == 1
            && warnings[0].contains("asking ECS for the cluster's container instances failed")
            && warnings[0].contains("AccessDenied"),
        "{warnings:?}"
    );
    assert_eq!(fake.count("UpdateService"), 1);
}
