//! The image check before any deployment: every container image of the
//! service's task definition must provide the task's runtime platform, checked
//! with the same inspector as `stevedore_image_manifest`.

use super::ecs_diagnostic;
use crate::diag::{Diagnostic, Diagnostics};
use crate::ecs;
use crate::registry::{self, InspectError, Platform, Reference, RegistryClient};
use crate::value::AttrPath;
use tokio_util::sync::CancellationToken;

const SKIP_HINT: &str =
    "Nothing was deployed. Fix the image or the task definition's runtimePlatform, or set \
                         verify_images = false to deploy without this check.";

/// Where a verification failure points: `digest` when the config sets it (the
/// image that reference came from is what to rebuild), else the resource.
#[derive(Clone, Copy)]
pub struct Blame {
    pub digest_set: bool,
}

impl Blame {
    fn error(self, summary: &str, detail: String) -> Diagnostic {
        let d = Diagnostic::error(summary, detail);
        if self.digest_set {
            d.at(AttrPath::attr("digest"))
        } else {
            d
        }
    }
}

/// Checks every container image; all problems are reported, not just the first.
pub async fn verify_images(
    client: &aws_sdk_ecs::Client,
    registry: &RegistryClient,
    cluster: &str,
    service: &str,
    cancel: &CancellationToken,
    blame: Blame,
) -> Result<(), Diagnostics> {
    let info = ecs::describe(client, cluster, service)
        .await
        .map_err(|e| ecs_diagnostic("Image Verification Failed", cluster, service, e))?;
    let Some(task_def) = info.task_definition_arn else {
        return Err(Diagnostic::error(
            "Image Verification Failed",
            format!("ECS service {service:?} in cluster {cluster:?} names no task definition, so its images cannot be checked.\n\n{SKIP_HINT}"),
        )
        .into());
    };
    let images = ecs::task_definition_images(client, &task_def)
        .await
        .map_err(|e| ecs_diagnostic("Image Verification Failed", cluster, service, e))?;
    let (os, arch) = &images.runtime_platform;
    let wanted = ecs::runtime_platform_to_oci(os, arch);
    let platform = Platform::parse(&wanted).map_err(|e| {
        Diagnostic::internal(format!("the ECS runtime platform {os}/{arch} mapped to {wanted:?}, which is not a platform: {e}"))
    })?;

    let mut diags = Diagnostics::new();
    for (container, image) in &images.images {
        let context = format!("Container {container:?} of task definition {task_def} (runtimePlatform {os}/{arch}, so {wanted})");
        let reference = match Reference::parse(image) {
            Ok(r) => r,
            Err(e) => {
                diags.push(blame.error(
                    "Invalid Image In Task Definition",
                    format!("{context} uses {image:?}: {e}.\n\n{SKIP_HINT}"),
                ));
                continue;
            }
        };
        let inspected = tokio::select! {
            r = registry::inspect(registry, &reference, Some(&platform)) => r,
            _ = cancel.cancelled() => return Err(Diagnostic::error("Image Verification Cancelled", format!("Checking {image} was interrupted. Nothing was deployed.")).into()),
        };
        if let Err(e) = inspected {
            diags.push(inspect_error(blame, &context, image, e));
        }
    }
    if diags.is_empty() {
        tracing::info!(cluster, service, task_definition = %task_def, platform = %wanted, "task definition images provide the runtime platform");
        Ok(())
    } else {
        Err(diags)
    }
}

fn inspect_error(blame: Blame, context: &str, image: &str, e: InspectError) -> Diagnostic {
    use crate::registry::RegistryError as R;
    let summary = match &e {
        InspectError::PlatformMissing { .. } | InspectError::ConfigMismatch { .. } => {
            "Image Does Not Match Task Platform"
        }
        InspectError::Registry(R::NotFound { .. }) => "Task Definition Image Not Found",
        InspectError::Registry(_) => "Task Definition Image Not Readable",
        InspectError::InvalidManifest { .. } => "Invalid Image In Registry",
    };
    let why = match &e {
        InspectError::PlatformMissing { .. } | InspectError::ConfigMismatch { .. } => {
            "\n\nECS would fail to start these tasks with `CannotPullContainerError`. Rebuild the image for that \
             platform, e.g. stevedore_image_build with platforms = [\"linux/amd64\"], or `docker buildx build \
             --platform linux/amd64 --provenance=false`."
        }
        _ => "",
    };
    blame.error(
        summary,
        format!("{context} uses {image}: {e}.{why}\n\n{SKIP_HINT}"),
    )
}
