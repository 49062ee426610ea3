//! ECS, through aws-sdk-ecs: read a service and its task definition's images,
//! force a new deployment, follow it to the end and explain a failure with the
//! stopped tasks' reasons and the service events; the CPU architecture of a
//! cluster's container instances for the image check. Knows nothing about
//! Terraform; `resources` turns `EcsError` into diagnostics.

mod calls;
pub mod error;
mod explain;
mod instances;
mod progress;
pub mod redeploy;
pub mod service;
mod tasks;

pub use error::{EcsError, FailureKind, StoppedTask};
pub use explain::PLATFORM_HINT;
pub use instances::{cluster_architecture, ClusterArchitecture, CPU_ARCHITECTURE};
pub use redeploy::{
    force_new_deployment, wait_for_deployment, DeploymentOutcome, PollPolicy, StartedDeployment,
};
pub use service::{
    describe, runtime_platform_to_oci, task_definition_images, ServiceInfo, TaskDefImages,
};
pub use tasks::RunningTask;
