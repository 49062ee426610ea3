//! The image check before any deployment: every container image of the
//! service's task definition must provide the task's platform, checked with
//! the same inspector as `stevedore_image_manifest`. The platform is the task
//! definition's `runtimePlatform`; without one, LINUX/X86_64 on Fargate, and on
//! EC2 or capacity providers the CPU of the cluster's container instances
//! (when that can't be known, a warning and no platform requirement).

use super::attr;
use super::ecs_diagnostic;
use crate::diag::{Diagnostic, Diagnostics};
use crate::ecs::{self, ClusterArchitecture, ServiceInfo, TaskDefImages};
use crate::oci::{Digest, Platform, Reference};
use crate::registry::{self, InspectError, RegistryClient};
use crate::value::AttrPath;
use tokio_util::sync::CancellationToken;

const SKIP_HINT: &str =
    "Nothing was deployed. Fix the image or the task definition's runtimePlatform, or set \
                         verify_images = false to deploy without this check.";

const PROVENANCE_HINT: &str =
    "Nothing was deployed. Fix the image or the task definition's runtimePlatform: \
     require_provenance proves the manifest the tasks run, so this check runs even with \
     verify_images = false.";

/// Where a verification failure points: `digest` when the config sets it (the
/// image that reference came from is what to rebuild), else the resource.
/// With `provenance` (`require_provenance` is set) the check runs whatever
/// `verify_images` says, since provenance is proven for the manifest the
/// tasks run, and it resolves every platform of an index when the platform
/// is not known.
#[derive(Clone, Copy)]
pub struct Blame {
    pub digest_set: bool,
    pub provenance: bool,
}

/// The images of the task definition as checked.
pub struct Checked {
    /// Platforms that could not be determined.
    pub warnings: Diagnostics,
    pub images: Vec<CheckedImage>,
}

/// One container's image and the manifests its tasks run: the one of the
/// task's platform, or each platform's of an index when the platform is not
/// known (only resolved with `Blame::provenance`; else empty).
pub struct CheckedImage {
    pub container: String,
    /// As the task definition spells it.
    pub image: String,
    /// `Container "web" of task definition ... (platform ...)`.
    pub context: String,
    /// The image's repository (no tag, no digest) and the manifest's digest.
    pub manifests: Vec<(Reference, Digest)>,
}

impl Blame {
    fn skip_hint(self) -> &'static str {
        if self.provenance {
            PROVENANCE_HINT
        } else {
            SKIP_HINT
        }
    }

    fn error(self, summary: &str, detail: String) -> Diagnostic {
        let d = Diagnostic::error(summary, detail);
        if self.digest_set {
            d.at(AttrPath::attr(attr::digest))
        } else {
            d
        }
    }
}

/// Checks every container image; all problems are reported, not just the
/// first. `Ok` carries the images' manifests and warnings (a platform that
/// could not be determined).
pub async fn verify_images(
    client: &aws_sdk_ecs::Client,
    registry: &RegistryClient,
    cluster: &str,
    service: &str,
    cancel: &CancellationToken,
    blame: Blame,
) -> Result<Checked, Diagnostics> {
    let info = ecs::describe(client, cluster, service)
        .await
        .map_err(|e| ecs_diagnostic("Image Verification Failed", cluster, service, e))?;
    let Some(task_def) = info.task_definition_arn.clone() else {
        return Err(Diagnostic::error(
            "Image Verification Failed",
            format!(
                "ECS service {service:?} in cluster {cluster:?} names no task definition, so its \
                 images cannot be checked.\n\n{}",
                blame.skip_hint()
            ),
        )
        .into());
    };
    let images = ecs::task_definition_images(client, &task_def)
        .await
        .map_err(|e| ecs_diagnostic("Image Verification Failed", cluster, service, e))?;
    let mut warnings = Diagnostics::new();
    let (platform, why) = match wanted_platform(client, cluster, &info, &images).await {
        Wanted::Known { platform, why } => (Some(platform), why),
        Wanted::Unknown { why } => {
            warnings.push(platform_unknown(&task_def, service, &why));
            (None, "platform unknown".to_string())
        }
    };

    let mut diags = Diagnostics::new();
    let mut checked = Vec::new();
    for (container, image) in &images.images {
        let context = format!("Container {container:?} of task definition {task_def} ({why})");
        let one = tokio::select! {
            r = check_image(registry, platform.as_ref(), blame, &context, image) => r,
            _ = cancel.cancelled() => return Err(Diagnostic::error(
                "Image Verification Cancelled",
                format!("Checking {image} was interrupted. Nothing was deployed."),
            )
            .into()),
        };
        match one {
            Ok(manifests) => checked.push(CheckedImage {
                container: container.clone(),
                image: image.clone(),
                context,
                manifests,
            }),
            Err(d) => diags.push(d),
        }
    }
    if diags.is_empty() {
        tracing::info!(
            cluster,
            service,
            task_definition = %task_def,
            platform = %why,
            "task definition images checked"
        );
        Ok(Checked {
            warnings,
            images: checked,
        })
    } else {
        diags.extend(warnings);
        Err(diags)
    }
}

/// Checks one image; `Ok` holds the manifests its tasks run (see [`CheckedImage`]).
async fn check_image(
    registry: &RegistryClient,
    platform: Option<&Platform>,
    blame: Blame,
    context: &str,
    image: &str,
) -> Result<Vec<(Reference, Digest)>, Diagnostic> {
    let reference = Reference::parse(image).map_err(|e| {
        blame.error(
            "Invalid Image In Task Definition",
            format!("{context} uses {image:?}: {e}.\n\n{}", blame.skip_hint()),
        )
    })?;
    let inspection = registry::inspect(registry, &reference, platform)
        .await
        .map_err(|e| inspect_error(blame, context, image, e))?;
    let repo = Reference {
        tag: None,
        digest: None,
        ..reference.clone()
    };
    if let Some(digest) = inspection.platform_digest {
        return Ok(vec![(repo, digest)]);
    }
    if !blame.provenance {
        return Ok(Vec::new());
    }
    // The platform is not known and the image is an index of several: the
    // tasks may run any of its platforms, so each must be proven.
    let mut manifests = Vec::new();
    for text in &inspection.platforms {
        let Ok(one) = Platform::parse(text) else {
            continue;
        };
        let resolved = registry::inspect(registry, &reference, Some(&one))
            .await
            .map_err(|e| inspect_error(blame, context, image, e))?;
        if let Some(digest) = resolved.platform_digest {
            manifests.push((repo.clone(), digest));
        }
    }
    Ok(manifests)
}

fn platform_unknown(task_def: &str, service: &str, why: &str) -> Diagnostic {
    Diagnostic::warning(
        "Image Platform Not Checked",
        format!(
            "Task definition {task_def} of ECS service {service:?} sets no runtimePlatform \
             and the service does not run on Fargate, so its tasks run on the CPU of the \
             cluster's container instances, but {why}. The images were checked to exist, \
             not for a platform.\n\nSet runtimePlatform.cpuArchitecture in the task \
             definition to have them checked."
        ),
    )
}

/// The platform the images must provide and the sentence that says where it came from.
enum Wanted {
    Known { platform: Platform, why: String },
    Unknown { why: String },
}

async fn wanted_platform(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    info: &ServiceInfo,
    images: &TaskDefImages,
) -> Wanted {
    let (os, arch) = &images.runtime_platform;
    let (arch, source) = if images.declares_architecture || info.is_fargate() {
        (arch.clone(), format!("runtimePlatform {os}/{arch}"))
    } else {
        match ecs::cluster_architecture(client, cluster).await {
            Ok(ClusterArchitecture::Single(a)) => {
                let source = format!(
                    "no runtimePlatform; the cluster's container instances report {} {a}",
                    ecs::CPU_ARCHITECTURE
                );
                (a, source)
            }
            Ok(ClusterArchitecture::Mixed(all)) => {
                let why = format!(
                    "the cluster's container instances have different CPUs ({})",
                    all.join(", ")
                );
                return Wanted::Unknown { why };
            }
            Ok(ClusterArchitecture::NoInstances) => {
                let why = format!("cluster {cluster:?} has no container instances to ask");
                return Wanted::Unknown { why };
            }
            Ok(ClusterArchitecture::Unreported) => {
                let why = format!(
                    "a container instance of cluster {cluster:?} reports no {}",
                    ecs::CPU_ARCHITECTURE
                );
                return Wanted::Unknown { why };
            }
            Err(e) => {
                let why = format!("asking ECS for the cluster's container instances failed: {e}");
                return Wanted::Unknown { why };
            }
        }
    };
    let wanted = ecs::runtime_platform_to_oci(os, &arch);
    match Platform::parse(&wanted) {
        Ok(platform) => Wanted::Known { platform, why: format!("{source}, so {wanted}") },
        Err(e) => Wanted::Unknown {
            why: format!("the platform {os}/{arch} maps to {wanted:?}, which is not a platform stevedore knows ({e})"),
        },
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
                .to_string()
        }
        InspectError::Registry(r) => {
            format!("\n\n{}", crate::resources::common::registry_hint(r, crate::resources::common::RegistryUse::Read))
        }
        InspectError::InvalidManifest { .. } => String::new(),
    };
    blame.error(
        summary,
        format!("{context} uses {image}: {e}.{why}\n\n{}", blame.skip_hint()),
    )
}
