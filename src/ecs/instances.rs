//! The CPU architecture of a cluster's container instances, for EC2 and
//! capacity-provider services whose task definition names no runtimePlatform:
//! ECS places their tasks on those instances, so the instances' architecture
//! is the platform the image must provide.

use aws_sdk_ecs::Client;

use super::calls::{retry_throttled, Target};
use super::error::EcsError;

/// The container-instance attribute ECS sets to `x86_64` or `arm64`.
pub const CPU_ARCHITECTURE: &str = "ecs.cpu-architecture";

/// DescribeContainerInstances takes at most 100 ARNs per call.
const DESCRIBE_BATCH: usize = 100;

/// What the cluster's container instances say about their CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterArchitecture {
    /// Every instance reports this `ecs.cpu-architecture` (e.g. `arm64`).
    Single(String),
    /// Instances report different ones (sorted); tasks may land on either.
    Mixed(Vec<String>),
    /// The cluster has no registered container instances.
    NoInstances,
    /// Some instance reports no `ecs.cpu-architecture`.
    Unreported,
}

/// Lists every container instance of `cluster` (paged) and reads their
/// `ecs.cpu-architecture` attribute.
pub async fn cluster_architecture(
    client: &Client,
    cluster: &str,
) -> Result<ClusterArchitecture, EcsError> {
    let target = Target {
        cluster,
        service: "",
    };
    let mut arns: Vec<String> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = retry_throttled("ListContainerInstances", target, || {
            client
                .list_container_instances()
                .cluster(cluster)
                .set_next_token(next.clone())
                .send()
        })
        .await?;
        arns.extend(page.container_instance_arns().iter().cloned());
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    if arns.is_empty() {
        return Ok(ClusterArchitecture::NoInstances);
    }
    let mut found: Vec<String> = Vec::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let described = retry_throttled("DescribeContainerInstances", target, || {
            client
                .describe_container_instances()
                .cluster(cluster)
                .set_container_instances(Some(batch.to_vec()))
                .send()
        })
        .await?;
        for instance in described.container_instances() {
            let arch = instance
                .attributes()
                .iter()
                .find(|a| a.name() == CPU_ARCHITECTURE)
                .and_then(|a| a.value());
            match arch {
                Some(arch) => found.push(arch.to_ascii_lowercase()),
                None => return Ok(ClusterArchitecture::Unreported),
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(match found.as_slice() {
        [] => ClusterArchitecture::NoInstances,
        [one] => ClusterArchitecture::Single(one.clone()),
        _ => ClusterArchitecture::Mixed(found),
    })
}
