//! Resource `stevedore_image_build`: build for the platforms asked, push one
//! clean manifest per platform, verify what the registry serves.
//!
//! Plan hashes the context from disk and never touches the daemon; apply
//! runs `publish::build_and_push`; refresh resolves the tags and reports a
//! moved or missing tag as drift by changing `digest`, which the next plan
//! compares with the digest apply recorded in private state.

mod build_log;
pub(super) mod delete;
mod evidence;
pub(super) mod inputs;
mod marker;
pub(super) mod outcome;
mod plan;
mod schema;
mod secrets;

use super::common;
use crate::diag::{Diagnostic, Diagnostics};
use crate::oci::{parse_repository, Reference};
use crate::publish;
use crate::resource::{
    ApplyRequest, ApplyResponse, Ctx, PlanRequest, PlanResponse, ReadResponse, Resource,
};
use crate::schema::Schema;
use crate::value::{AttrPath, Value};
use async_trait::async_trait;
use std::path::Path;

pub struct ImageBuild;

pub const TYPE_NAME: &str = "stevedore_image_build";

crate::model! {
    /// The resource's configuration and state.
    pub struct BuildModel, names attr {
        context,
        dockerfile,
        repository,
        tags,
        platforms,
        build_args,
        target,
        labels,
        secrets,
        secret_env,
        secret_files,
        cache_from,
        cache_inline,
        build_log_file,
        no_cache,
        manifest_format,
        builder,
        keep_remotely,
        triggers,
        id,
        context_hash,
        digest,
        image_uri,
        platform_digests,
        manifest_media_type,
        image_id,
        built_by,
        provenance,
        signing_key_file,
        attach,
        provenance_digests,
    }
}

fn defaults() -> Vec<(&'static str, Value)> {
    vec![
        (attr::dockerfile, Value::string("Dockerfile")),
        (attr::tags, Value::string_list(["latest"])),
        (attr::platforms, Value::string_list(["linux/amd64"])),
        (attr::no_cache, Value::Bool(false)),
        (attr::manifest_format, Value::string("docker")),
        (attr::builder, Value::string("auto")),
        (attr::keep_remotely, Value::Bool(true)),
        (attr::cache_inline, Value::Bool(false)),
        (attr::provenance, Value::Bool(false)),
    ]
}

#[async_trait]
impl Resource for ImageBuild {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        inputs::validate(config)
    }

    /// A state written before an attribute with a default existed (`cache_inline`,
    /// `provenance`) gets that default, as the plan sets it from the configuration, so a
    /// provider upgrade plans nothing.
    fn upgrade_state(&self, _version: i64, raw: &serde_json::Value) -> Result<Value, Diagnostics> {
        let mut state = crate::value::from_json(raw, &self.schema().ty()).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                "State Upgrade Failed",
                format!("The stored state of {TYPE_NAME} does not fit its schema: {e}"),
            ))
        })?;
        for (name, default) in defaults() {
            if raw.get(name).is_none() {
                state.set(name, default);
            }
        }
        Ok(state)
    }

    async fn plan(&self, _ctx: &Ctx, req: PlanRequest) -> PlanResponse {
        let mut proposed = req.proposed.clone();
        common::apply_defaults(&mut proposed, &req.config, &defaults());
        let mut diags = inputs::validate(&proposed);
        let hash = if diags.has_errors() {
            Value::Unknown
        } else {
            match context_hash(&proposed).await {
                Ok(hash) => hash,
                Err(d) => {
                    diags.push(d);
                    Value::Unknown
                }
            }
        };
        let drifted = plan::drifted(&req.prior, &req.prior_private);
        let mut planned =
            BuildModel::from_value(&plan::planned(&req.prior, &proposed, hash, drifted));
        if req.write_only_allowed {
            // Terraform 1.11+: the value is read from the configuration at apply.
            planned.secrets = Value::Null;
        }
        let planned = planned.into_value();
        PlanResponse {
            planned,
            // NOTE: a new repository is a new image elsewhere; the old one is
            // left to delete (which honours keep_remotely).
            requires_replace: vec![AttrPath::attr(attr::repository)],
            planned_private: req.prior_private,
            diags,
        }
    }

    async fn apply(&self, ctx: &Ctx, req: ApplyRequest) -> ApplyResponse {
        // Known outputs in the plan mean nothing to build (only keep_remotely
        // changed): the planned state is the new state.
        let planned = BuildModel::from_value(&req.planned);
        if !planned.digest.is_unknown() {
            return ApplyResponse {
                new_state: req.planned,
                private: req.planned_private,
                diags: Diagnostics::new(),
            };
        }
        let updating = !req.prior.is_null();
        let fail = |diags: Diagnostics| ApplyResponse {
            new_state: req.prior.clone(),
            private: req.planned_private.clone(),
            diags,
        };
        // `secrets` is write-only: Terraform 1.11+ plans it null, so its
        // values come from the configuration (the same values before 1.11).
        let wanted = BuildModel {
            secrets: BuildModel::from_value(&req.config).secrets,
            ..planned.clone()
        };
        let publish_req = match inputs::publish_request(&wanted.into_value()) {
            Ok(r) => r,
            Err(d) => return fail(d),
        };
        let provider = match ctx.provider() {
            Ok(p) => p,
            Err(d) => return fail(d.into()),
        };
        // Every daemon this build needs, connected before anything is built,
        // so an unreachable builder fails it before any tag moves.
        let builders = match provider.builders_for(&publish_req.platforms).await {
            Ok(builders) => builders,
            Err((builder, source)) => {
                let e = publish::PublishError::Connect { builder, source };
                return fail(
                    outcome::publish_diagnostic(
                        &e,
                        &publish::Written::default(),
                        &publish_req.repository.repository_reference(),
                        updating,
                    )
                    .into(),
                );
            }
        };
        let repo_text = planned.repository.as_str().unwrap_or_default().to_string();
        let mut build_log =
            match build_log::BuildLog::open(&repo_text, planned.build_log_file.as_str()) {
                Ok(l) => l,
                Err(d) => return fail(d.into()),
            };
        let log = |line: &str| build_log.line(line);
        // Boxed: the whole publish is a deep future, too deep for the async-trait's one.
        let published = Box::pin(publish::build_and_push(
            &builders,
            &provider.registry,
            &publish_req,
            ctx.cancel.clone(),
            log,
        ))
        .await;
        match published {
            Ok(published) => ApplyResponse {
                new_state: outcome::state_after(&req.planned, &published),
                private: marker_after(&published, &req.prior, &req.planned_private),
                diags: Diagnostics::new(),
            },
            Err(failed) => {
                let e = &failed.error;
                tracing::warn!(repository = %repo_text, step = e.step().as_str(), error = %e, "publish failed");
                fail(outcome::publish_diagnostic(e, &failed.written, &repo_text, updating).into())
            }
        }
    }

    async fn read(&self, ctx: &Ctx, state: Value, private: Vec<u8>) -> ReadResponse {
        let keep = |state: Value, private: Vec<u8>, diags: Diagnostics| ReadResponse {
            new_state: state,
            private,
            diags,
        };
        let model = BuildModel::from_value(&state);
        let (Some(repo_text), Some(tags)) = (model.repository.as_str(), model.tags.as_list())
        else {
            return keep(state, private, Diagnostics::new());
        };
        let Ok((registry, repository)) = parse_repository(repo_text) else {
            return keep(state, private, Diagnostics::new());
        };
        let repo = Reference {
            registry,
            repository,
            tag: None,
            digest: None,
        };
        let tags: Vec<String> = tags
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        if ctx.config_not_known_yet() {
            // Nothing to look with yet; the next plan, once known, refreshes.
            let why = Diagnostic::warning(
                "Image Not Refreshed",
                format!(
                    "The provider configuration is not fully known yet, so the tags of {repo_text} \
                     were not looked up; the state is kept as it was."
                ),
            );
            return keep(state, private, why.into());
        }
        let provider = match ctx.provider() {
            Ok(p) => p,
            Err(d) => return keep(state, private, d.into()),
        };
        let resolved = tokio::select! {
            r = provider.registry.tag_digests(&repo, &tags) => r,
            _ = ctx.cancel.cancelled() => return keep(
                state,
                private,
                Diagnostic::warning(
                    "Image Not Refreshed",
                    "The refresh was interrupted; the state is kept as it was.",
                )
                .into(),
            ),
        };
        match resolved {
            Ok(resolved) => {
                let new_state = plan::refreshed(&state, &resolved);
                if new_state != state {
                    tracing::info!(repository = %repo_text, ?resolved, "tags moved or missing: planning a rebuild");
                }
                keep(new_state, private, Diagnostics::new())
            }
            Err(e) => {
                let d = outcome::refresh_warning(repo_text, &e);
                keep(state, private, d.into())
            }
        }
    }

    async fn delete(&self, ctx: &Ctx, prior: Value, private: &[u8]) -> Diagnostics {
        if BuildModel::from_value(&prior).keep_remotely.as_bool() != Some(false) {
            // NO-OP: keep_remotely leaves the image where it is.
            return Diagnostics::new();
        }
        delete::delete_remote(ctx, &prior, private).await
    }
}

/// The private marker after a successful publish: what it pushed and which
/// of that this resource owns.
fn marker_after(published: &publish::Published, prior: &Value, prior_private: &[u8]) -> Vec<u8> {
    let platforms: Vec<&crate::oci::Digest> = published.platform_digests.values().collect();
    let mut pushed = platforms.clone();
    pushed.push(&published.digest);
    let owned = marker::owned_after(&published.created, &pushed, prior, prior_private);
    marker::marker_with_evidence(&published.digest, &platforms, &owned, &published.evidence)
}

/// `context_hash` at plan time, or unknown while context, Dockerfile or an
/// input is. Hashing reads every file, so it runs off the async threads.
async fn context_hash(planned: &Value) -> Result<Value, Diagnostic> {
    let model = BuildModel::from_value(planned);
    let (Some(context), Some(dockerfile), Some(extra)) = (
        model.context.as_str().map(str::to_string),
        model.dockerfile.as_str().map(str::to_string),
        plan::hash_inputs(planned),
    ) else {
        return Ok(Value::Unknown);
    };
    let hashed = tokio::task::spawn_blocking(move || {
        crate::docker::context_hash(Path::new(&context), Path::new(&dockerfile), &extra)
    })
    .await;
    match hashed {
        Ok(Ok(hash)) => Ok(Value::string(hash)),
        Ok(Err(e)) => Err(inputs::context_diagnostic(e)),
        Err(e) => Err(Diagnostic::internal(format!(
            "hashing the build context stopped: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_from_before_an_attribute_gets_its_default() {
        let raw = serde_json::json!({"context": "/ctx", "repository": "r/web"});
        let state = ImageBuild.upgrade_state(0, &raw).unwrap();
        assert_eq!(state.get(attr::provenance), &Value::Bool(false));
        assert_eq!(state.get(attr::cache_inline), &Value::Bool(false));
        let set = serde_json::json!({"provenance": true, "cache_inline": null});
        let state = ImageBuild.upgrade_state(0, &set).unwrap();
        assert_eq!(state.get(attr::provenance), &Value::Bool(true));
        assert!(
            state.get(attr::cache_inline).is_null(),
            "a value written is kept"
        );
    }

    #[test]
    fn the_schema_declares_the_model() {
        crate::schema::assert_declares(&schema::schema().block, BuildModel::ATTRIBUTES);
    }

    #[test]
    fn every_default_is_an_attribute_of_the_model() {
        for (name, _) in defaults() {
            assert!(BuildModel::ATTRIBUTES.contains(&name), "{name}");
        }
    }
}
