//! Destroy of `stevedore_image_build` with `keep_remotely = false`: what
//! to delete comes from the private marker apply wrote, never from the
//! refreshed `digest`, which may name someone else's image.

use super::BuildModel;
use crate::diag::{Diagnostic, Diagnostics};
use crate::oci::{parse_repository, Reference};
use crate::publish::{self, DeleteOutcome};
use crate::resource::Ctx;
use crate::value::Value;

/// Deletes the manifests this resource pushed (as its private marker
/// records them, never what refresh found), except those a tag outside its
/// `tags` still names. A registry that cannot delete gets a warning, since
/// the resource is gone from state either way.
pub(super) async fn delete_remote(ctx: &Ctx, prior: &Value, private: &[u8]) -> Diagnostics {
    let model = BuildModel::from_value(prior);
    let Some(repo_text) = model.repository.as_str() else {
        return Diagnostics::new();
    };
    let Ok((registry, repository)) = parse_repository(repo_text) else {
        return Diagnostics::new();
    };
    let repo = Reference {
        registry,
        repository,
        tag: None,
        digest: None,
    };
    let Some(pushed) = super::marker::owned_manifests(private, prior) else {
        return Diagnostic::warning(
            "Image Left In Registry",
            format!(
                "keep_remotely = false, but the state does not record which manifests this \
                 resource pushed to {repo_text}, so nothing was deleted. Delete the image by hand \
                 if it is no longer used."
            ),
        )
        .into();
    };
    if pushed.is_empty() {
        return Diagnostic::warning(
            "Image Left In Registry",
            format!(
                "keep_remotely = false, but this resource created none of the manifests its tags \
                 in {repo_text} point at: the registry already held them when it pushed (an \
                 identical image pushed by another state or resource), so they are not its to \
                 delete. Nothing was deleted."
            ),
        )
        .into();
    }
    let own_tags: Vec<String> = model
        .tags
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let provider = match ctx.provider() {
        Ok(p) => p,
        Err(d) => return d.into(),
    };
    if let Err(d) = delete_evidence(&provider.registry, &repo, repo_text, private, ctx).await {
        return d.into();
    }
    match publish::delete_pushed(
        &provider.registry,
        &repo,
        &pushed,
        &own_tags,
        ctx.cancel.clone(),
    )
    .await
    {
        Ok(outcome) => report(repo_text, &outcome),
        Err(e) => Diagnostic::error(
            "Image Delete Failed",
            format!(
                "Deleting {} from {repo_text} (after checking that no other tag names them): {e}. \
                 Nothing was deleted past this point and the resource stays in state; run destroy \
                 again, or set keep_remotely = true and apply to leave the image. {}",
                pushed.join(", "),
                super::outcome::registry_hint(&e)
            ),
        )
        .into(),
    }
}

/// Deletes the referrers (provenance, attachments) the last apply created,
/// before the image they are about.
async fn delete_evidence(
    registry: &crate::registry::RegistryClient,
    repo: &Reference,
    repo_text: &str,
    private: &[u8],
    ctx: &Ctx,
) -> Result<(), Diagnostic> {
    let evidence = super::marker::owned_evidence(private);
    publish::delete_evidence(registry, repo, &evidence, ctx.cancel.clone())
        .await
        .map(|_| ())
        .map_err(|e| {
            Diagnostic::error(
                "Image Delete Failed",
                format!(
                    "Deleting the provenance and attachments this resource pushed to \
                     {repo_text}: {e}. The image itself was not touched and the resource stays \
                     in state; run destroy again, or set keep_remotely = true and apply to \
                     leave it. {}",
                    super::outcome::registry_hint(&e)
                ),
            )
        })
}

/// Warnings for what destroy left in the registry, and why.
pub(crate) fn report(repo_text: &str, outcome: &DeleteOutcome) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if !outcome.kept.is_empty() {
        let why: Vec<String> = outcome
            .kept
            .iter()
            .map(|(digest, tags)| format!("{digest} (tagged {})", tags.join(", ")))
            .collect();
        diags.push(Diagnostic::warning(
            "Image Partly Left In Registry",
            format!(
                "keep_remotely = false, but tags outside this resource's `tags` still name some of \
                 what it pushed to {repo_text}, so those manifests were left in place: {}. \
                 Deleting them would remove those tags too. Delete them by hand once nothing uses \
                 them.",
                why.join("; ")
            ),
        ));
    }
    if let Some(status) = outcome.unsupported {
        diags.push(Diagnostic::warning(
            "Image Left In Registry",
            format!(
                "keep_remotely = false, but {repo_text} answered HTTP {status} to DELETE: this \
                 registry does not delete manifests (CNCF distribution needs \
                 storage.delete.enabled). The image is still there; the resource is removed from \
                 state."
            ),
        ));
    }
    diags
}
