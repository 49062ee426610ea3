//! What a publish or a refresh came to, as Terraform sees it: the state after
//! a successful publish, and the diagnostics and warnings its failures become.

use std::collections::BTreeMap;

use super::{attr, BuildModel};
use crate::diag::Diagnostic;
use crate::docker::BuildError;
use crate::oci::Digest;
use crate::publish::{PublishError, Published, Written};
use crate::registry::RegistryError;
use crate::value::Value;

/// The state after a successful publish: `planned` with the outputs filled in.
pub fn state_after(planned: &Value, published: &Published) -> Value {
    let mut state = BuildModel::from_value(planned);
    let repo = state.repository.as_str().unwrap_or_default();
    let uri = format!("{repo}@{}", published.digest);
    state.digest = Value::string(published.digest.as_str());
    state.image_uri = Value::string(&uri);
    state.id = Value::string(uri);
    state.manifest_media_type = Value::string(&published.media_type);
    state.platform_digests = map(&published.platform_digests);
    state.image_id = map(&published.image_ids);
    state.built_by = Value::string_map(published.built_by.clone());
    state.provenance_digests = map(&published.provenance_digests);
    state.into_value()
}

fn map(m: &BTreeMap<String, Digest>) -> Value {
    Value::string_map(m.iter().map(|(k, v)| (k.clone(), v.to_string())))
}

/// The diagnostic for a failed publish. `updating`: a previous image exists
/// and the state keeps it; `written` says which tags moved before the failure.
pub fn publish_diagnostic(
    e: &PublishError,
    written: &Written,
    repository: &str,
    updating: bool,
) -> Diagnostic {
    let step = e.step();
    let (summary, attr, hint) = summary_for(e);
    let mut detail = format!("Step \"{}\" failed", step.as_str());
    if let Some(p) = e.platform() {
        detail += &format!(" for {p}");
    }
    detail += &format!(": {e}.");
    if let PublishError::Build {
        source: BuildError::Failed { log_tail, .. },
        ..
    } = e
    {
        if !log_tail.is_empty() {
            detail += &format!(
                "\n\nLast lines of the build log:\n  {}",
                log_tail.join("\n  ")
            );
        }
    }
    if !hint.is_empty() {
        detail += &format!("\n\n{hint}");
    }
    detail += &tags_after_failure(written, repository, updating);
    let d = Diagnostic::error(summary, detail);
    match attr {
        Some(a) => d.at(crate::value::AttrPath::attr(a)),
        None => d,
    }
}

/// What the tags serve after a failure, as the publish recorded its writes.
fn tags_after_failure(written: &Written, repository: &str, updating: bool) -> String {
    if written.no_tag_changed() {
        return if updating {
            format!("\n\nThe tags in {repository} were not changed; the state keeps the previous image.")
        } else {
            format!("\n\nNothing was tagged in {repository}; the resource was not created.")
        };
    }
    let mut text = String::from("\n\n");
    if !written.moved.is_empty() {
        text += &format!(
            "These tags in {repository} now point at the new image: {}. ",
            written.moved.join(", ")
        );
    }
    if !written.uncertain.is_empty() {
        text += &format!(
            "These tags may point at it: {} (their write got no answer). ",
            written.uncertain.join(", ")
        );
    }
    text += "Any other tag was not changed. ";
    text += if updating {
        "The state keeps the previous digest, so the next plan shows the drift and rebuilds."
    } else {
        "The resource was not created; the next apply builds and pushes again, and a tag that \
         already serves the image is not written again."
    };
    text
}

fn summary_for(e: &PublishError) -> (&'static str, Option<&'static str>, &'static str) {
    match e {
        PublishError::Context { .. } => (
            "Build Context Invalid",
            Some(attr::context),
            "Check `context` and `dockerfile`.",
        ),
        PublishError::Scratch { .. } => (
            "Image Build Failed",
            None,
            "Check free space and permissions of the temporary directory (TMPDIR).",
        ),
        PublishError::Connect { builder, .. } if builder != crate::docker::DEFAULT_BUILDER => (
            "Docker Daemon Unreachable",
            None,
            "Check the `builder` block of that name in the provider configuration (its \
             `docker_host` or `docker_context`) and that its daemon is running; the platforms it \
             lists build nowhere else.",
        ),
        PublishError::Connect { .. } => (
            "Docker Daemon Unreachable",
            None,
            "Check `docker_host` or `docker_context` in the provider block (where they are unset: \
             DOCKER_HOST, DOCKER_CONTEXT, the current docker context) and that the daemon is \
             running.",
        ),
        PublishError::Unrouted { .. } => ("Image Build Failed", None, ""),
        // GOTCHA: no attribute path here. Terraform quotes the source line an
        // attribute path points at, and for `secrets = { npm = "..." }` that
        // line holds the secret in clear.
        PublishError::Build {
            source: BuildError::SecretsNeedBuildKit { .. },
            ..
        } => ("Image Build Failed", None, ""),
        PublishError::Build {
            source: BuildError::BuildKitUnavailable | BuildError::BuildKitRefused { .. },
            ..
        } => (
            "Image Build Failed",
            Some(attr::builder),
            "Set `builder = \"classic\"` (without `secrets`), or use a daemon with BuildKit \
             (Docker 18.09+ on Linux).",
        ),
        PublishError::Build {
            source: BuildError::Connect(_) | BuildError::Daemon { .. },
            ..
        } => (
            "Image Build Failed",
            None,
            "Check that the Docker daemon is running and reachable.",
        ),
        PublishError::Build { .. } => (
            "Image Build Failed",
            None,
            "Fix the Dockerfile step named above; the log tail shows the daemon's own output.",
        ),
        PublishError::Export { .. } | PublishError::Compress { .. } => {
            ("Image Export Failed", None, "")
        }
        PublishError::PushBlob { source, .. }
        | PublishError::PushManifest { source, .. }
        | PublishError::Tag { source, .. } => ("Image Push Failed", None, registry_hint(source)),
        PublishError::Verify { .. } => (
            "Image Verification Failed",
            None,
            "The registry does not serve what was pushed: something else wrote to these tags at \
             the same time, or the registry rewrites manifests. Check who else pushes to this \
             repository.",
        ),
        PublishError::Evidence { .. } => (
            "Image Evidence Push Failed",
            None,
            "The image and its tags were pushed and verified; the evidence was not. Check that \
             the registry stores OCI 1.1 artifacts (image manifests with artifactType and \
             subject) and that the attached files are readable, then apply again.",
        ),
        PublishError::Cancelled => (
            "Image Build Cancelled",
            None,
            "Terraform was interrupted; run apply again.",
        ),
    }
}

/// What to do about a registry failure while pushing, tagging or deleting.
pub fn registry_hint(e: &RegistryError) -> &'static str {
    crate::resources::common::registry_hint(e, crate::resources::common::RegistryUse::Write)
}

/// The warning when refresh could not look at the registry: not drift.
pub fn refresh_warning(repository: &str, e: &RegistryError) -> Diagnostic {
    Diagnostic::warning(
        "Image Not Refreshed",
        format!(
            "Could not read the tags of {repository} back from the registry: {e}. This is not treated as drift: \
             the state is kept as it was, and the next refresh tries again. {}",
            registry_hint(e)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::VerifyError;

    fn failed_build() -> PublishError {
        PublishError::Build {
            platform: "linux/amd64".into(),
            builder: crate::docker::DEFAULT_BUILDER.into(),
            source: BuildError::Failed {
                step: Some("Step 3/3 : COPY missing.txt /m".into()),
                message: "COPY failed: file not found".into(),
                log_tail: vec!["Step 3/3 : COPY missing.txt /m".into()],
            },
        }
    }

    #[test]
    fn build_failure_shows_step_platform_and_log_tail() {
        let d = publish_diagnostic(&failed_build(), &Written::default(), "r/web", false);
        assert_eq!(d.summary, "Image Build Failed");
        assert!(d.detail.contains("for linux/amd64"), "{}", d.detail);
        assert!(
            d.detail
                .contains("build failed at Step 3/3 : COPY missing.txt /m"),
            "{}",
            d.detail
        );
        assert!(
            d.detail
                .contains("Last lines of the build log:\n  Step 3/3"),
            "{}",
            d.detail
        );
        assert!(
            d.detail.contains("Nothing was tagged in r/web"),
            "{}",
            d.detail
        );
    }

    #[test]
    fn update_failures_say_whether_tags_moved() {
        let d = publish_diagnostic(&failed_build(), &Written::default(), "r/web", true);
        assert!(d
            .detail
            .contains("were not changed; the state keeps the previous image"));
        let verify = PublishError::Verify {
            source: VerifyError::Differs {
                tag: "latest".into(),
                serves: "sha256:b".into(),
                pushed: "sha256:a".into(),
                reason: "moved".into(),
            },
        };
        let written = Written {
            moved: vec!["latest".into()],
            uncertain: vec!["v2".into()],
            created: Vec::new(),
        };
        let d = publish_diagnostic(&verify, &written, "r/web", true);
        assert_eq!(d.summary, "Image Verification Failed");
        assert!(
            d.detail.contains("tag latest serves sha256:b"),
            "{}",
            d.detail
        );
        assert!(
            d.detail
                .contains("These tags in r/web now point at the new image: latest."),
            "{}",
            d.detail
        );
        assert!(d.detail.contains("may point at it: v2"), "{}", d.detail);
        assert!(
            d.detail.contains("next plan shows the drift"),
            "{}",
            d.detail
        );
        // A failure after a tag moved never says nothing was tagged.
        let d = publish_diagnostic(&verify, &written, "r/web", false);
        assert!(!d.detail.contains("Nothing was tagged"), "{}", d.detail);
        assert!(
            d.detail.contains("now point at the new image: latest"),
            "{}",
            d.detail
        );
    }

    #[test]
    fn push_failure_says_what_to_check() {
        let e = PublishError::Tag {
            tag: "latest".into(),
            source: RegistryError::Unreachable {
                registry: "127.0.0.1:1".into(),
                detail: "connection refused".into(),
            },
        };
        let d = publish_diagnostic(&e, &Written::default(), "127.0.0.1:1/web", false);
        assert_eq!(d.summary, "Image Push Failed");
        assert!(
            d.detail.contains("registry 127.0.0.1:1 is unreachable"),
            "{}",
            d.detail
        );
        assert!(
            d.detail.contains("Check the address and port"),
            "{}",
            d.detail
        );
    }
}
