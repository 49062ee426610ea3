//! After a completed rollout, proof that the tasks run the image asked for:
//! every running task of the deployment must report `digest`, or,
//! when `digest` is an index, one of its platform manifests (ECS may report
//! either). The usual cause of a mismatch is a task definition pinning another
//! image than the one built, which no ECS state would ever flag.

use super::attr;
use crate::diag::Diagnostic;
use crate::ecs::RunningTask;
use crate::oci::document::{Described, Manifest};
use crate::oci::{Digest, Reference};
use crate::registry::RegistryClient;
use crate::value::AttrPath;

/// What the tasks were compared with.
pub struct Asked<'a> {
    pub digest: &'a Digest,
    pub deployment_id: &'a str,
    pub task_definition: Option<&'a str>,
    /// Container images of that task definition.
    pub images: &'a [(String, String)],
}

/// `Ok(None)`: proven. `Ok(Some(warning))`: the tasks report no digests.
/// `Err`: some task runs something else.
pub async fn prove(
    registry: &RegistryClient,
    asked: &Asked<'_>,
    tasks: &[RunningTask],
) -> Result<Option<Diagnostic>, Diagnostic> {
    if tasks.iter().all(|t| t.image_digests.is_empty()) {
        return Ok(Some(Diagnostic::warning(
            "Running Image Not Proven",
            format!(
                "ECS deployment {} completed, but its running tasks report no image digests, so \
                 whether they run {} could not be checked. Some ECS endpoints and older agents \
                 don't report `imageDigest`.",
                asked.deployment_id, asked.digest
            ),
        )));
    }
    let runs =
        |t: &RunningTask, accepted: &[String]| t.image_digests.iter().any(|d| accepted.contains(d));
    let mut accepted = vec![asked.digest.to_string()];
    if tasks.iter().all(|t| runs(t, &accepted)) {
        return Ok(None);
    }
    accepted.extend(platform_manifests(registry, asked).await);
    let wrong: Vec<&RunningTask> = tasks.iter().filter(|t| !runs(t, &accepted)).collect();
    if wrong.is_empty() {
        return Ok(None);
    }
    Err(mismatch(asked, tasks.len(), &wrong, &accepted))
}

/// The platform manifests of `digest` when it is an index, read through the
/// repositories the task definition names. Empty when it isn't one or no
/// registry answers: then only `digest` itself counts.
async fn platform_manifests(registry: &RegistryClient, asked: &Asked<'_>) -> Vec<String> {
    for (_, image) in asked.images {
        let Ok(reference) = Reference::parse(image) else {
            continue;
        };
        let fetched = match registry
            .get_manifest(&reference.with_digest(asked.digest))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(image, error = %e, "digest not readable through this image's repository");
                continue;
            }
        };
        if let Ok(Manifest::Index(index)) = Manifest::parse(&fetched.bytes, &fetched.media_type) {
            return index
                .manifests()
                .iter()
                .filter(|d| !d.is_attestation())
                .map(|d| d.content_digest().to_string())
                .collect();
        }
        return Vec::new();
    }
    Vec::new()
}

fn mismatch(
    asked: &Asked<'_>,
    total: usize,
    wrong: &[&RunningTask],
    accepted: &[String],
) -> Diagnostic {
    let mut run: Vec<&str> = wrong
        .iter()
        .flat_map(|t| t.image_digests.iter().map(String::as_str))
        .collect();
    run.sort();
    run.dedup();
    let platforms = match accepted.len() {
        1 => String::new(),
        _ => format!(
            " (an index; its platform manifests are {})",
            accepted[1..].join(", ")
        ),
    };
    let images: Vec<String> = asked
        .images
        .iter()
        .map(|(name, image)| format!("{name}: {image}"))
        .collect();
    let task_def = asked.task_definition.unwrap_or("(unknown)");
    Diagnostic::error(
        "ECS Tasks Run Another Image",
        format!(
            "ECS deployment {} completed, but {} of its {total} running tasks run none of the images asked for.\n\
             Digest asked for: {}{platforms}\n\
             Digests the tasks run: {}\n\
             Task definition {task_def} uses: {}\n\n\
             The usual cause is a task definition that pins another image: point its container at \
             stevedore_image_build.<name>.image_uri (or a tag that resolves to the digest). The state \
             records this deployment, and the next apply starts a new one.",
            asked.deployment_id,
            wrong.len(),
            asked.digest,
            run.join(", "),
            images.join("; "),
        ),
    )
    .at(AttrPath::attr(attr::digest))
}
