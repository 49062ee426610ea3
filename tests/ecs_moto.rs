//! `stevedore::ecs` against moto's ECS. moto models a service's deployments
//! (with rolloutState) but launches no tasks, so this proves the SDK wiring
//! and the deployment bookkeeping, not task failures: those are in ecs_fake.

use std::process::Child;
use std::time::Duration;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, CpuArchitecture, LaunchType, NetworkMode, OsFamily,
    RuntimePlatform,
};
use stevedore::aws::{ecs_client, AwsSettings};
use stevedore::ecs::{self, EcsError, PollPolicy};
use tokio_util::sync::CancellationToken;

/// moto_server, stopped when the test ends.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let (child, url) = acceptance_tests::moto::spawn_moto();
    Moto { child, url }
}

async fn client(moto: &Moto) -> aws_sdk_ecs::Client {
    acceptance_tests::moto::export_aws_env();
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        ecs_endpoint: Some(moto.url.clone()),
        ..Default::default()
    };
    ecs_client(&settings).await
}

async fn fargate_service(c: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> String {
    c.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
    let container = ContainerDefinition::builder()
        .name("app")
        .image("public.ecr.aws/nginx/nginx:1.27")
        .essential(true)
        .build();
    let platform = RuntimePlatform::builder()
        .operating_system_family(OsFamily::Linux)
        .cpu_architecture(CpuArchitecture::Arm64)
        .build();
    let td = c
        .register_task_definition()
        .family(service)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .runtime_platform(platform)
        .container_definitions(container)
        .send()
        .await
        .unwrap();
    let td_arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap()
        .to_string();
    c.create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(&td_arn)
        .desired_count(1)
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .unwrap();
    td_arn
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn force_new_deployment_and_wait_against_moto() {
    let moto = start_moto();
    let c = client(&moto).await;
    let td_arn = fargate_service(&c, "prod", "web").await;

    let before = ecs::describe(&c, "prod", "web").await.unwrap();
    let images = ecs::task_definition_images(&c, &td_arn).await.unwrap();
    assert_eq!(
        images.images,
        vec![(
            "app".to_string(),
            "public.ecr.aws/nginx/nginx:1.27".to_string()
        )]
    );
    assert_eq!(
        ecs::runtime_platform_to_oci(&images.runtime_platform.0, &images.runtime_platform.1),
        "linux/arm64"
    );

    let started = ecs::force_new_deployment(&c, "prod", "web").await.unwrap();
    assert_ne!(
        Some(&started.deployment_id),
        before.primary_deployment_id.as_ref(),
        "a new deployment id"
    );
    let poll = PollPolicy {
        initial: Duration::from_millis(50),
        ..PollPolicy::default()
    };
    let outcome = ecs::wait_for_deployment(
        &c,
        "prod",
        "web",
        &started.deployment_id,
        Duration::from_secs(30),
        CancellationToken::new(),
        poll,
    )
    .await
    .unwrap();
    assert_eq!(outcome.deployment_id, started.deployment_id);
    assert_eq!(outcome.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(outcome.running_count, 1);
    assert_eq!(
        outcome.task_definition_arn.as_deref(),
        Some(td_arn.as_str())
    );

    let after = ecs::describe(&c, "prod", "web").await.unwrap();
    assert_eq!(
        after.primary_deployment_id.as_deref(),
        Some(started.deployment_id.as_str())
    );
}

#[tokio::test]
#[ignore = "acceptance: run make testacc"]
async fn deleted_services_and_clusters_are_not_found_in_moto() {
    let moto = start_moto();
    let c = client(&moto).await;
    fargate_service(&c, "prod", "web").await;
    c.delete_service()
        .cluster("prod")
        .service("web")
        .force(true)
        .send()
        .await
        .unwrap();

    let err = ecs::describe(&c, "prod", "web").await.unwrap_err();
    assert!(matches!(err, EcsError::ServiceNotFound { .. }), "{err}");
    let err = ecs::force_new_deployment(&c, "prod", "web")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = ecs::describe(&c, "nope", "web").await.unwrap_err();
    assert!(matches!(err, EcsError::ClusterNotFound { .. }), "{err}");
}
