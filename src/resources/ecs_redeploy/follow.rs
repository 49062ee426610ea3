//! Following the deployment Terraform already started: with
//! `aws_ecs_task_definition` pinning the built image and `aws_ecs_service`
//! switching to the new revision, ECS is already rolling out `digest` when this
//! resource applies. Forcing another deployment on top would start tasks for
//! the first one only to kill them for the second, so the PRIMARY deployment
//! is adopted instead when
//! - a container image of its task definition is `...@digest`, or a tag that
//!   the registry resolves to `digest` now, and
//! - it is in progress, or it is not the deployment this resource recorded
//!   last (so it started after it: ECS keeps only the newest deployments);
//!   with nothing recorded (create), a finished one only when pinned by digest.
//!
//! Anything uncertain (ECS or the registry failing to answer) means forcing,
//! as before: a redundant deployment is slower, never wrong.

use crate::ecs::{self, StartedDeployment};
use crate::oci::Reference;
use crate::registry::RegistryClient;

/// A deployment to follow instead of forcing one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adopted {
    pub started: StartedDeployment,
    pub why: String,
}

/// What the PRIMARY deployment looks like, for [`decide`].
pub struct Primary<'a> {
    pub id: &'a str,
    pub rollout_state: Option<&'a str>,
    /// Container images of its task definition.
    pub images: &'a [(String, String)],
}

/// How an image reference names `digest`, if it does without the registry.
fn pins(image: &str, digest: &str) -> bool {
    image
        .rsplit_once('@')
        .is_some_and(|(_, pinned)| pinned == digest)
}

/// Whether to adopt, given which images resolve to `digest` by tag
/// (`resolved`, container names). Pure, so the rules are a table test.
pub fn decide(
    primary: &Primary<'_>,
    digest: &str,
    recorded: Option<&str>,
    resolved: &[String],
) -> Option<String> {
    let pinned = primary.images.iter().find_map(|(name, image)| {
        pins(image, digest).then(|| format!("container {name:?} pins {image}"))
    });
    let by_tag = || {
        primary.images.iter().find_map(|(name, image)| {
            resolved.contains(name).then(|| {
                format!("container {name:?} uses {image}, which the registry resolves to {digest}")
            })
        })
    };
    let by_pin = pinned.is_some();
    let reference = pinned.or_else(by_tag)?;
    let state = primary.rollout_state.unwrap_or("no rolloutState");
    let timing = match (primary.rollout_state, recorded) {
        (Some("FAILED"), _) => return None,
        (Some("IN_PROGRESS"), _) => "it is in progress".to_string(),
        (_, Some(r)) if r == primary.id => return None,
        (_, Some(r)) => format!("it ({state}) started after deployment {r}, the one recorded last"),
        // GOTCHA: with nothing recorded, a finished deployment of a tag that
        // resolves to the digest *now* may still run what the tag named before
        // it moved; only a pinned digest proves what it rolled out.
        (_, None) if by_pin => {
            format!("it ({state}) is the service's current deployment and none was recorded")
        }
        (_, None) => return None,
    };
    Some(format!("{reference}, and {timing}"))
}

/// Looks at the service's PRIMARY deployment and returns it when it already
/// rolls out `digest` (see the module comment). `None`: force a new one.
pub async fn adoptable(
    client: &aws_sdk_ecs::Client,
    registry: &RegistryClient,
    cluster: &str,
    service: &str,
    digest: &str,
    recorded: Option<&str>,
) -> Option<Adopted> {
    let info = match ecs::describe(client, cluster, service).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "could not look at the service's deployments; forcing one");
            return None;
        }
    };
    let (id, task_def) = (info.primary_deployment_id?, info.primary_task_definition?);
    let images = match ecs::task_definition_images(client, &task_def).await {
        Ok(images) => images.images,
        Err(e) => {
            tracing::debug!(
                error = %e,
                task_definition = %task_def,
                "could not read the PRIMARY deployment's task definition; forcing one"
            );
            return None;
        }
    };
    let primary = Primary {
        id: &id,
        rollout_state: info.primary_rollout_state.as_deref(),
        images: &images,
    };
    let mut resolved = Vec::new();
    if !images.iter().any(|(_, image)| pins(image, digest)) {
        for (name, image) in &images {
            if resolves_to(registry, image, digest).await {
                resolved.push(name.clone());
            }
        }
    }
    let why = decide(&primary, digest, recorded, &resolved)?;
    Some(Adopted {
        started: StartedDeployment {
            deployment_id: id,
            task_definition_arn: Some(task_def),
            created_at: info.primary_created_at,
        },
        why,
    })
}

/// True when `image` is a tag the registry now resolves to `digest`.
async fn resolves_to(registry: &RegistryClient, image: &str, digest: &str) -> bool {
    let Ok(reference) = Reference::parse(image) else {
        return false;
    };
    if reference.digest.is_some() {
        return false;
    }
    match registry.get_manifest(&reference).await {
        Ok(fetched) => fetched.digest == digest,
        Err(e) => {
            tracing::debug!(image, error = %e, "could not resolve the tag; not adopting on its account");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:dddd";

    fn images(image: &str) -> Vec<(String, String)> {
        vec![
            ("log".into(), "fluent-bit:3".into()),
            ("app".into(), image.into()),
        ]
    }

    #[test]
    fn adopts_a_primary_that_rolls_out_the_digest_and_is_new_or_in_progress() {
        let pinned = images("repo/web@sha256:dddd");
        let tagged = images("repo/web:v8");
        let other = images("repo/web@sha256:eeee");
        let app = vec!["app".to_string()];
        // (case, images, rollout state, recorded deployment, containers resolving by tag, adopt?)
        type Case<'a> = (
            &'a str,
            &'a [(String, String)],
            Option<&'a str>,
            Option<&'a str>,
            &'a [String],
            bool,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("pinned, in progress", &pinned, Some("IN_PROGRESS"), Some("ecs-svc/1"), &[], true),
            ("pinned, completed, newer than recorded", &pinned, Some("COMPLETED"), Some("ecs-svc/1"), &[], true),
            ("pinned, completed, nothing recorded", &pinned, Some("COMPLETED"), None, &[], true),
            ("tag, completed, nothing recorded", &tagged, Some("COMPLETED"), None, &app, false),
            ("tag, in progress, nothing recorded", &tagged, Some("IN_PROGRESS"), None, &app, true),
            ("tag, completed, newer than recorded", &tagged, Some("COMPLETED"), Some("ecs-svc/1"), &app, true),
            ("pinned, but the one recorded", &pinned, Some("COMPLETED"), Some("ecs-svc/2"), &[], false),
            ("pinned, recorded and still in progress", &pinned, Some("IN_PROGRESS"), Some("ecs-svc/2"), &[], true),
            ("pinned, failed", &pinned, Some("FAILED"), Some("ecs-svc/1"), &[], false),
            ("tag resolving to the digest", &tagged, Some("IN_PROGRESS"), Some("ecs-svc/1"), &app, true),
            ("tag resolving elsewhere", &tagged, Some("IN_PROGRESS"), Some("ecs-svc/1"), &[], false),
            ("another digest", &other, Some("IN_PROGRESS"), Some("ecs-svc/1"), &[], false),
            ("no rolloutState, newer", &pinned, None, Some("ecs-svc/1"), &[], true),
        ];
        for (name, images, state, recorded, resolved, want) in cases {
            let primary = Primary {
                id: "ecs-svc/2",
                rollout_state: state,
                images,
            };
            let got = decide(&primary, D, recorded, resolved);
            assert_eq!(got.is_some(), want, "{name}: {got:?}");
        }
    }

    #[test]
    fn the_reason_names_the_container_and_why_now() {
        let pinned = images("repo/web@sha256:dddd");
        let primary = Primary {
            id: "ecs-svc/2",
            rollout_state: Some("COMPLETED"),
            images: &pinned,
        };
        let why = decide(&primary, D, Some("ecs-svc/1"), &[]).unwrap();
        assert_eq!(
            why,
            "container \"app\" pins repo/web@sha256:dddd, and it (COMPLETED) started after \
             deployment ecs-svc/1, the one recorded last"
        );
    }
}
