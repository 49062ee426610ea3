//! Reading a service and the images its task definition runs, so the resource
//! can refresh its state and verify images before forcing a deployment.

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::types::{Deployment, Service};
use aws_sdk_ecs::Client;

use super::calls::{retry_throttled, Target};
use super::error::EcsError;
use super::progress::to_time;
use std::time::SystemTime;

/// What `describe` reports about a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    pub service_arn: String,
    /// ACTIVE or DRAINING; INACTIVE is reported as `EcsError::ServiceNotFound`.
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub task_definition_arn: Option<String>,
    pub primary_deployment_id: Option<String>,
    pub primary_rollout_state: Option<String>,
    /// The task definition the PRIMARY deployment rolls out.
    pub primary_task_definition: Option<String>,
    pub primary_created_at: Option<SystemTime>,
    /// `FARGATE`, `EC2` or `EXTERNAL`; absent when a capacity provider strategy is used.
    pub launch_type: Option<String>,
    /// The capacity providers of the service's strategy, if it has one.
    pub capacity_providers: Vec<String>,
}

impl ServiceInfo {
    /// True when the tasks run on Fargate: launch type FARGATE, or a strategy
    /// of the FARGATE / FARGATE_SPOT capacity providers only.
    pub fn is_fargate(&self) -> bool {
        match self.launch_type.as_deref() {
            Some(t) => t == "FARGATE",
            None => {
                !self.capacity_providers.is_empty()
                    && self
                        .capacity_providers
                        .iter()
                        .all(|p| p == "FARGATE" || p == "FARGATE_SPOT")
            }
        }
    }
}

/// The container images of a task definition and the platform it runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskDefImages {
    /// `(container name, image reference)` in task-definition order.
    pub images: Vec<(String, String)>,
    /// `(operatingSystemFamily, cpuArchitecture)`, LINUX/X86_64 when unset (ECS's default).
    pub runtime_platform: (String, String),
    /// Whether the task definition sets `runtimePlatform.cpuArchitecture` itself.
    /// When not, ECS's default holds on Fargate only; EC2 tasks run on
    /// whatever CPU their container instances have.
    pub declares_architecture: bool,
}

pub async fn describe(
    client: &Client,
    cluster: &str,
    service: &str,
) -> Result<ServiceInfo, EcsError> {
    let target = Target { cluster, service };
    let out = retry_throttled("DescribeServices", target, || {
        client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
    })
    .await?;
    let svc = first_service(&out, target)?;
    let primary = primary_deployment(svc);
    Ok(ServiceInfo {
        service_arn: svc.service_arn().unwrap_or_default().to_string(),
        status: svc.status().unwrap_or_default().to_string(),
        desired_count: svc.desired_count(),
        running_count: svc.running_count(),
        task_definition_arn: svc.task_definition().map(str::to_string),
        primary_deployment_id: primary.and_then(Deployment::id).map(str::to_string),
        primary_rollout_state: primary
            .and_then(Deployment::rollout_state)
            .map(|s| s.as_str().to_string()),
        primary_task_definition: primary
            .and_then(Deployment::task_definition)
            .map(str::to_string),
        primary_created_at: to_time(primary.and_then(Deployment::created_at)),
        launch_type: svc.launch_type().map(|t| t.as_str().to_string()),
        capacity_providers: svc
            .capacity_provider_strategy()
            .iter()
            .map(|s| s.capacity_provider().to_string())
            .collect(),
    })
}

/// The one service DescribeServices was asked about. ECS answers a missing
/// service with a `failures` entry (reason MISSING), not an error, and keeps
/// deleted services around as INACTIVE for a while.
pub(crate) fn first_service<'a>(
    out: &'a DescribeServicesOutput,
    target: Target<'_>,
) -> Result<&'a Service, EcsError> {
    let not_found = || EcsError::ServiceNotFound {
        cluster: target.cluster.into(),
        service: target.service.into(),
    };
    if let Some(failure) = out.failures().first() {
        let reason = failure.reason().unwrap_or_default();
        if reason == "MISSING" {
            return Err(not_found());
        }
        let detail = failure
            .detail()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(EcsError::Api {
            operation: "DescribeServices",
            message: format!("{reason}{detail}"),
        });
    }
    match out.services().first() {
        None => Err(not_found()),
        Some(svc) if svc.status() == Some("INACTIVE") => Err(not_found()),
        Some(svc) => Ok(svc),
    }
}

pub(crate) fn primary_deployment(svc: &Service) -> Option<&Deployment> {
    svc.deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
}

pub async fn task_definition_images(
    client: &Client,
    task_def_arn: &str,
) -> Result<TaskDefImages, EcsError> {
    // Task definitions are not service-scoped; the target only names errors.
    let target = Target {
        cluster: "",
        service: "",
    };
    let out = retry_throttled("DescribeTaskDefinition", target, || {
        client
            .describe_task_definition()
            .task_definition(task_def_arn)
            .send()
    })
    .await?;
    let Some(def) = out.task_definition() else {
        return Err(EcsError::UnexpectedResponse {
            operation: "DescribeTaskDefinition",
            what: format!("no task definition in the answer for {task_def_arn}"),
        });
    };
    let images = def
        .container_definitions()
        .iter()
        .filter_map(|c| {
            Some((
                c.name().unwrap_or_default().to_string(),
                c.image()?.to_string(),
            ))
        })
        .collect();
    let platform = def.runtime_platform();
    let os = platform
        .and_then(|p| p.operating_system_family())
        .map(|o| o.as_str().to_string());
    let arch = platform
        .and_then(|p| p.cpu_architecture())
        .map(|a| a.as_str().to_string());
    Ok(TaskDefImages {
        declares_architecture: arch.is_some(),
        images,
        runtime_platform: (
            os.unwrap_or_else(|| "LINUX".into()),
            arch.unwrap_or_else(|| "X86_64".into()),
        ),
    })
}

/// ECS platform names to the OCI `os/arch` the registry verifier matches.
/// Every WINDOWS_SERVER_* family runs on amd64 (Fargate has no Windows arm64).
pub fn runtime_platform_to_oci(os_family: &str, cpu_arch: &str) -> String {
    if os_family.to_ascii_uppercase().starts_with("WINDOWS") {
        return "windows/amd64".into();
    }
    let arch = match cpu_arch.to_ascii_uppercase().as_str() {
        "ARM64" => "arm64".to_string(),
        "X86_64" | "" => "amd64".to_string(),
        other => other.to_ascii_lowercase(),
    };
    format!("linux/{arch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_platforms_map_to_oci() {
        let cases = [
            ("LINUX", "X86_64", "linux/amd64"),
            ("LINUX", "ARM64", "linux/arm64"),
            ("linux", "arm64", "linux/arm64"),
            ("WINDOWS_SERVER_2022_CORE", "X86_64", "windows/amd64"),
            ("WINDOWS_SERVER_2019_FULL", "", "windows/amd64"),
            // ecs.cpu-architecture values of container instances.
            ("LINUX", "x86_64", "linux/amd64"),
        ];
        for (os, arch, want) in cases {
            assert_eq!(runtime_platform_to_oci(os, arch), want, "{os}/{arch}");
        }
    }
}

#[cfg(test)]
mod fargate_tests {
    use super::*;

    fn info(launch_type: Option<&str>, providers: &[&str]) -> ServiceInfo {
        ServiceInfo {
            service_arn: String::new(),
            status: "ACTIVE".into(),
            desired_count: 1,
            running_count: 1,
            task_definition_arn: None,
            primary_deployment_id: None,
            primary_rollout_state: None,
            primary_task_definition: None,
            primary_created_at: None,
            launch_type: launch_type.map(str::to_string),
            capacity_providers: providers.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn fargate_is_the_launch_type_or_a_fargate_only_strategy() {
        assert!(info(Some("FARGATE"), &[]).is_fargate());
        assert!(info(None, &["FARGATE", "FARGATE_SPOT"]).is_fargate());
        assert!(!info(Some("EC2"), &[]).is_fargate());
        assert!(!info(Some("EXTERNAL"), &[]).is_fargate());
        assert!(!info(None, &["my-asg-provider"]).is_fargate());
        assert!(!info(None, &["FARGATE", "my-asg-provider"]).is_fargate());
        assert!(
            !info(None, &[]).is_fargate(),
            "neither: ECS's default is EC2"
        );
    }
}
