//! `stevedore_image_index`: one index over images built elsewhere (a CI matrix, other
//! states). Plan reads the sources (reading is not building or pushing): when every source
//! is pinned by digest the index's digest is known then; apply copies what is missing into
//! the repository and tags and verifies as `stevedore_image_build` does (`publish::join`).
//! Refresh, drift, destroy with `keep_remotely` and the private record of what this resource
//! created work as for the build; import takes `<repository>:<tag>`.
use async_trait::async_trait;

mod inputs;
mod schema;
mod state;

use super::common;
use super::image_build::{delete as build_delete, outcome as build_outcome};
use crate::diag::{Diagnostic, Diagnostics};
use crate::oci::Reference;
use crate::publish::join::{self, Joined};
use crate::publish::{self, Published};
use crate::resource::{
    ApplyRequest, ApplyResponse, Ctx, PlanRequest, PlanResponse, ReadResponse, Resource,
};
use crate::schema::Schema;
use crate::value::{AttrPath, Value};
use inputs::{format_name, join_diagnostic, repo_of, sources, strings, validate};
use state::{created_of, digest_map, set_outputs, with_outputs, Created};

pub const TYPE_NAME: &str = "stevedore_image_index";

crate::model! {
    /// The resource's configuration and state.
    pub struct IndexModel, names attr {
        repository,
        tags,
        sources,
        manifest_format,
        keep_remotely,
        id,
        digest,
        image_uri,
        platform_digests,
        manifest_media_type,
    }
}

/// What joining produces; unknown in a plan whose sources are not all pinned.
const OUTPUTS: [&str; 5] = [
    attr::id,
    attr::digest,
    attr::image_uri,
    attr::platform_digests,
    attr::manifest_media_type,
];

pub struct ImageIndex;

/// Reads the sources and checks `manifest_format` against them.
async fn resolve(ctx: &Ctx, model: &IndexModel) -> Result<Joined, Diagnostics> {
    let provider = ctx.provider().map_err(Diagnostics::from)?;
    let Some(sources) = sources(model) else {
        return Err(Diagnostic::internal("sources are not known").into());
    };
    let joined = tokio::select! {
        r = join::resolve(&provider.registry, &sources) => r,
        _ = ctx.cancel.cancelled() => {
            return Err(Diagnostic::error("Interrupted", "Terraform was interrupted.").into())
        }
    }
    .map_err(|e| Diagnostics::from(join_diagnostic(&e)))?;
    if let Some(wanted) = model.manifest_format.as_str() {
        if wanted != format_name(&joined) {
            return Err(Diagnostic::attr_error(
                attr::manifest_format,
                "Manifest Format Differs From The Sources",
                format!(
                    "manifest_format = {wanted:?}, but the sources are {} images; copying keeps \
                     each manifest's bytes (and so its digest), so the index takes their family. \
                     Set manifest_format = {:?}, or build the sources with the other format.",
                    format_name(&joined),
                    format_name(&joined)
                ),
            )
            .into());
        }
    }
    Ok(joined)
}

#[async_trait]
impl Resource for ImageIndex {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        validate(config)
    }

    async fn plan(&self, ctx: &Ctx, req: PlanRequest) -> PlanResponse {
        let mut proposed = req.proposed.clone();
        let defaults = [
            (attr::tags, Value::string_list(["latest"])),
            (attr::keep_remotely, Value::Bool(true)),
        ];
        common::apply_defaults(&mut proposed, &req.config, &defaults);
        let mut diags = validate(&proposed);
        let mut planned = IndexModel::from_value(&proposed);
        let prior = IndexModel::from_value(&req.prior);
        let respond = |planned: IndexModel, diags| PlanResponse {
            planned: planned.into_value(),
            requires_replace: vec![AttrPath::attr(attr::repository)],
            planned_private: req.prior_private.clone(),
            diags,
        };
        let unknown = |planned: &mut IndexModel| {
            set_outputs(planned, |_| Value::Unknown);
            if planned.manifest_format.is_null() {
                planned.manifest_format = Value::Unknown;
            }
        };
        if proposed.is_null() {
            return respond(planned, diags);
        }
        if diags.has_errors() || sources(&planned).is_none() || ctx.config_not_known_yet() {
            unknown(&mut planned);
            return respond(planned, diags);
        }
        let joined = match resolve(ctx, &planned).await {
            Ok(joined) => joined,
            Err(d) => {
                let same = !req.prior.is_null()
                    && prior.sources == planned.sources
                    && prior.tags == planned.tags
                    && prior.repository == planned.repository;
                if same {
                    // Nothing asked changed: a registry that cannot be read now (an outage,
                    // expired credentials) must not block every other change of the plan.
                    let why: Vec<String> = d.0.iter().map(|d| d.detail.clone()).collect();
                    diags.push(Diagnostic::warning(
                        "Sources Not Read",
                        format!(
                            "The sources could not be read at plan time ({}); nothing about \
                             this index changed in the configuration, so it is kept as it is.",
                            why.join("; ")
                        ),
                    ));
                    set_outputs(&mut planned, |name| req.prior.get(name).clone());
                    if planned.manifest_format.is_null() {
                        planned.manifest_format = prior.manifest_format.clone();
                    }
                    return respond(planned, diags);
                }
                diags.extend(d);
                unknown(&mut planned);
                return respond(planned, diags);
            }
        };
        if planned.manifest_format.is_null() {
            planned.manifest_format = Value::string(format_name(&joined));
        }
        let (digest, media_type) = joined.target();
        let unchanged = prior.digest.as_str() == Some(digest.as_str())
            && prior.tags == planned.tags
            && prior.repository == planned.repository;
        let pinned = planned
            .sources
            .as_list()
            .unwrap_or_default()
            .iter()
            .all(|s| {
                s.as_str()
                    .is_some_and(|s| Reference::parse(s).is_ok_and(|r| r.digest.is_some()))
            });
        if unchanged {
            set_outputs(&mut planned, |name| req.prior.get(name).clone());
        } else if pinned {
            let platforms = digest_map(&join::platform_digests(&joined));
            with_outputs(&mut planned, digest.as_str(), media_type, platforms);
        } else {
            // A tag may move between plan and apply: only apply knows.
            unknown(&mut planned);
            planned.manifest_format = Value::string(format_name(&joined));
        }
        respond(planned, diags)
    }

    async fn apply(&self, ctx: &Ctx, req: ApplyRequest) -> ApplyResponse {
        let planned = IndexModel::from_value(&req.planned);
        let prior = IndexModel::from_value(&req.prior);
        let fail = |diags: Diagnostics| ApplyResponse {
            new_state: req.prior.clone(),
            private: req.planned_private.clone(),
            diags,
        };
        // Nothing to push: the tags already serve what the plan says (keep_remotely changed).
        if !req.prior.is_null()
            && prior.digest == planned.digest
            && prior.tags == planned.tags
            && !planned.digest.is_unknown()
        {
            return ApplyResponse {
                new_state: req.planned,
                private: req.planned_private,
                diags: Diagnostics::new(),
            };
        }
        let joined = match resolve(ctx, &planned).await {
            Ok(joined) => joined,
            Err(d) => return fail(d),
        };
        let (Some(repo_text), Some(repo)) = (
            planned.repository.as_str(),
            planned.repository.as_str().and_then(repo_of),
        ) else {
            return fail(Diagnostic::internal("the repository is not known at apply").into());
        };
        let (digest, _) = joined.target();
        if let Some(expected) = planned.digest.as_str() {
            if expected != digest.as_str() {
                return fail(
                    Diagnostic::error(
                        "Sources Changed Since Plan",
                        format!(
                            "The plan said the index would be {expected}, but the sources now \
                             give {digest}; nothing was pushed. Run plan again."
                        ),
                    )
                    .into(),
                );
            }
        }
        let provider = match ctx.provider() {
            Ok(p) => p,
            Err(d) => return fail(d.into()),
        };
        let tags = strings(&planned.tags);
        let result = join::publish_joined(
            &provider.registry,
            &repo,
            &tags,
            &joined,
            ctx.cancel.clone(),
        )
        .await;
        match result {
            Ok(published) => {
                let mut state = planned.clone();
                state.manifest_format = Value::string(format_name(&joined));
                let Published {
                    digest,
                    media_type,
                    platform_digests,
                    created,
                    ..
                } = &published;
                with_outputs(
                    &mut state,
                    digest.as_str(),
                    media_type,
                    digest_map(platform_digests),
                );
                let mut owned = created_of(&req.planned_private).unwrap_or_default();
                owned.extend(created.iter().map(|d| d.to_string()));
                owned.sort();
                owned.dedup();
                ApplyResponse {
                    new_state: state.into_value(),
                    private: serde_json::to_vec(&Created { created: owned }).unwrap_or_default(),
                    diags: Diagnostics::new(),
                }
            }
            Err(failed) => fail(
                build_outcome::publish_diagnostic(
                    &failed.error,
                    &failed.written,
                    repo_text,
                    !req.prior.is_null(),
                )
                .into(),
            ),
        }
    }

    async fn read(&self, ctx: &Ctx, state: Value, private: Vec<u8>) -> ReadResponse {
        let keep = |state: Value, private: Vec<u8>, diags: Diagnostics| ReadResponse {
            new_state: state,
            private,
            diags,
        };
        let model = IndexModel::from_value(&state);
        let (Some(repo_text), Some(repo)) = (
            model.repository.as_str(),
            model.repository.as_str().and_then(repo_of),
        ) else {
            return keep(state, private, Diagnostics::new());
        };
        let provider = match ctx.provider() {
            Ok(p) if !ctx.config_not_known_yet() => p,
            _ => return keep(state, private, Diagnostics::new()),
        };
        let tags = strings(&model.tags);
        match provider.registry.tag_digests(&repo, &tags).await {
            Ok(resolved) => {
                let ours = model.digest.as_str();
                let moved = resolved
                    .values()
                    .find(|d| d.as_ref().map(|d| d.as_str()) != ours);
                let Some(observed) = moved else {
                    return keep(state, private, Diagnostics::new());
                };
                // A tag moved or is gone: drift, so the next plan joins again.
                let mut new = model.clone();
                let uri = observed.as_ref().map(|d| format!("{repo_text}@{d}"));
                new.digest = Value::opt_string(observed.as_ref().map(|d| d.to_string()));
                new.image_uri = Value::opt_string(uri.clone());
                new.id = Value::opt_string(uri);
                keep(new.into_value(), private, Diagnostics::new())
            }
            Err(e) => keep(
                state,
                private,
                build_outcome::refresh_warning(repo_text, &e).into(),
            ),
        }
    }

    async fn delete(&self, ctx: &Ctx, prior: Value, private: &[u8]) -> Diagnostics {
        let model = IndexModel::from_value(&prior);
        if model.keep_remotely.as_bool() != Some(false) {
            return Diagnostics::new();
        }
        let Some(repo_text) = model.repository.as_str() else {
            return Diagnostics::new();
        };
        let created = created_of(private).unwrap_or_default();
        if created.is_empty() {
            return Diagnostic::warning(
                "Image Left In Registry",
                format!(
                    "keep_remotely = false, but this resource created nothing in {repo_text} (the \
                     registry already held what its tags point at, or it was imported), so \
                     nothing was deleted."
                ),
            )
            .into();
        }
        let (Some(repo), Ok(provider)) = (repo_of(repo_text), ctx.provider()) else {
            return Diagnostics::new();
        };
        let tags = strings(&model.tags);
        let pushed: Vec<crate::oci::Digest> = created
            .iter()
            .filter_map(|d| crate::oci::Digest::parse(d).ok())
            .collect();
        match publish::delete_pushed(
            &provider.registry,
            &repo,
            &pushed,
            &tags,
            ctx.cancel.clone(),
        )
        .await
        {
            Ok(outcome) => build_delete::report(repo_text, &outcome),
            Err(e) => Diagnostic::error(
                "Image Delete Failed",
                format!(
                    "Deleting what this resource created in {repo_text}: {e}. The resource \
                     stays in state; run destroy again, or set keep_remotely = true. {}",
                    build_outcome::registry_hint(&e)
                ),
            )
            .into(),
        }
    }

    async fn import(&self, ctx: &Ctx, id: &str) -> Result<Value, Diagnostics> {
        let bad = || {
            Diagnostics::from(Diagnostic::error(
                "Invalid Import ID",
                format!("{id:?}: import takes <repository>:<tag>, e.g. 127.0.0.1:5000/web:v7."),
            ))
        };
        let reference = Reference::parse(id).map_err(|_| bad())?;
        let (Some(tag), None) = (reference.tag.clone(), &reference.digest) else {
            return Err(bad());
        };
        let provider = ctx.provider().map_err(Diagnostics::from)?;
        let fetched = provider
            .registry
            .get_manifest(&reference)
            .await
            .map_err(|e| Diagnostics::from(common::registry_diagnostic(id, e)))?;
        let repo = reference.repository_reference();
        // The tag's platforms, each pinned: sources that join to what the tag serves.
        let joined = join::resolve(&provider.registry, &[(id.to_string(), reference.clone())])
            .await
            .map_err(|e| Diagnostics::from(join_diagnostic(&e)))?;
        let mut state = IndexModel {
            repository: Value::string(&repo),
            tags: Value::string_list([tag.as_str()]),
            sources: Value::string_list(
                joined
                    .manifests
                    .iter()
                    .map(|m| format!("{repo}@{}", m.digest)),
            ),
            manifest_format: Value::string(format_name(&joined)),
            keep_remotely: Value::Bool(true),
            ..IndexModel::default()
        };
        let platforms = digest_map(&join::platform_digests(&joined));
        with_outputs(
            &mut state,
            fetched.digest.as_str(),
            &fetched.media_type,
            platforms,
        );
        Ok(state.into_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_declares_the_model() {
        crate::schema::assert_declares(&schema::schema().block, IndexModel::ATTRIBUTES);
    }

    #[test]
    fn bad_sources_tags_and_formats_are_named_by_attribute() {
        let config = IndexModel {
            repository: Value::string("127.0.0.1:5000/web"),
            tags: Value::string_list(["-bad"]),
            sources: Value::string_list(["127.0.0.1:5000/a@sha256:12", "ok:5000/b:v1"]),
            manifest_format: Value::string("oci2"),
            ..IndexModel::default()
        }
        .into_value();
        let d = validate(&config);
        let paths: Vec<String> =
            d.0.iter()
                .map(|d| {
                    d.attribute
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                })
                .collect();
        assert_eq!(paths, ["sources[0]", "tags[0]", "manifest_format"], "{d:?}");
        let empty = IndexModel {
            sources: Value::List(Vec::new()),
            ..IndexModel::default()
        };
        assert_eq!(validate(&empty.into_value()).0[0].summary, "No Sources");
    }
}
