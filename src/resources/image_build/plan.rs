//! Pure plan decisions: which values go into `context_hash`, when an update
//! must rebuild, what every attribute is planned as, and when refresh found
//! the tags moved (against the private marker, see [`super::marker`]).
//!
//! Terraform checks each plan against prior and config (terraform
//! `internal/plans/objchange/plan_valid.go`, AssertPlanValid) and each apply
//! against the plan: what apply will produce is planned unknown; an update
//! that builds nothing plans the prior values exactly, so apply returns them
//! unchanged.

use std::collections::BTreeMap;

use super::marker::marker_digest;
use super::{attr, BuildModel};
use crate::oci::Digest;
use crate::value::Value;

/// What a build produces; unknown in a plan that rebuilds.
pub const OUTPUTS: [&str; 8] = [
    attr::id,
    attr::digest,
    attr::image_uri,
    attr::platform_digests,
    attr::manifest_media_type,
    attr::image_id,
    attr::built_by,
    attr::provenance_digests,
];

/// Everything besides the files that decides what gets pushed, as the
/// `inputs` of `docker::context_hash`, or `None` while any is unknown.
/// Secrets go in as their ids and sources only, never a value or a hash of
/// one (see `secrets`).
pub fn hash_inputs(planned: &Value) -> Option<BTreeMap<String, String>> {
    let mut inputs = BTreeMap::new();
    for name in [
        attr::build_args,
        attr::labels,
        attr::secrets,
        attr::secret_env,
        attr::secret_files,
        attr::triggers,
        attr::tags,
        attr::platforms,
        attr::target,
        attr::no_cache,
        attr::manifest_format,
        attr::builder,
        attr::cache_inline,
    ] {
        if !planned.get(name).is_wholly_known() {
            return None;
        }
    }
    for (name, prefix) in [
        (attr::build_args, "build_arg"),
        (attr::labels, "label"),
        (attr::triggers, "trigger"),
    ] {
        for (k, v) in planned.get(name).to_string_map() {
            inputs.insert(format!("{prefix}:{k}"), v);
        }
    }
    super::secrets::hash_inputs(planned, &mut inputs);
    for name in [attr::tags, attr::platforms] {
        let list: Vec<&str> = planned
            .get(name)
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        inputs.insert(name.to_string(), list.join("\n"));
    }
    for name in [attr::target, attr::manifest_format, attr::builder] {
        if let Some(v) = planned.get(name).as_str() {
            inputs.insert(name.to_string(), v.to_string());
        }
    }
    let model = BuildModel::from_value(planned);
    let no_cache = model.no_cache.as_bool().unwrap_or(false);
    inputs.insert(attr::no_cache.into(), no_cache.to_string());
    // Inline cache metadata changes the image config; absent (false) adds
    // nothing, so the hashes of existing states stay as they were.
    if model.cache_inline.as_bool() == Some(true) {
        inputs.insert(attr::cache_inline.into(), "true".into());
    }
    super::evidence::hash_inputs(planned, &mut inputs).then_some(inputs)
}

/// Whether the plan must build and push: on create; when the hash or the
/// repository changed (or is not known yet); when refresh found the tags
/// elsewhere than where apply left them (`drifted`).
pub fn needs_rebuild(prior: &Value, planned: &Value, drifted: bool) -> bool {
    if prior.is_null() || drifted {
        return true;
    }
    [attr::context_hash, attr::repository].iter().any(|name| {
        let new = planned.get(name);
        !new.is_wholly_known() || new != prior.get(name)
    })
}

/// The planned state: `proposed` (defaults already filled in) with
/// `context_hash` set and the outputs unknown on a rebuild, else from prior.
pub fn planned(prior: &Value, proposed: &Value, context_hash: Value, drifted: bool) -> Value {
    let mut planned = proposed.clone();
    planned.set(attr::context_hash, context_hash);
    let rebuild = needs_rebuild(prior, &planned, drifted);
    for name in OUTPUTS {
        let value = if rebuild {
            Value::Unknown
        } else {
            prior.get(name).clone()
        };
        planned.set(name, value);
    }
    planned
}

/// True when the state no longer says what apply pushed: refresh found a tag
/// missing (digest null) or moved (digest differs from the marker). Without
/// a marker (state from before markers) only a missing digest counts.
pub fn drifted(prior: &Value, private: &[u8]) -> bool {
    if prior.is_null() {
        return false;
    }
    match (
        BuildModel::from_value(prior).digest.as_str(),
        marker_digest(private),
    ) {
        (None, _) => true,
        (Some(now), Some(pushed)) => now != pushed,
        (Some(_), None) => false,
    }
}

/// What refresh makes of the state given what each tag points at now
/// (`None`: tag or repository missing). Unchanged when every tag still
/// names the state's digest; otherwise `digest`, `image_uri` and `id`
/// say what is there (null when missing), which [`drifted`] then sees.
pub fn refreshed(state: &Value, resolved: &BTreeMap<String, Option<Digest>>) -> Value {
    let model = BuildModel::from_value(state);
    let ours = model.digest.as_str();
    let observed = if resolved.values().any(Option::is_none) {
        None
    } else {
        match resolved
            .values()
            .flatten()
            .find(|d| Some(d.as_str()) != ours)
        {
            Some(moved) => Some(moved.clone()),
            None => return state.clone(),
        }
    };
    let uri = observed
        .as_ref()
        .and_then(|d| model.repository.as_str().map(|r| format!("{r}@{d}")));
    let mut new = model.clone();
    new.digest = Value::opt_string(observed.map(String::from));
    new.image_uri = Value::opt_string(uri.clone());
    new.id = Value::opt_string(uri);
    new.into_value()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
