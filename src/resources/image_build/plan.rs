//! Pure plan decisions: which values go into `context_hash`, when an update
//! must rebuild, what every attribute is planned as, and the private-state
//! marker recording the digest apply pushed.
//!
//! Terraform 1.0.3 checks plans against prior and config (PROTOCOL-NOTES
//! §3.6): what apply will produce is planned unknown; an update that builds
//! nothing plans the prior values exactly, so apply returns them unchanged.

use std::collections::BTreeMap;

use crate::value::Value;

/// What a build produces; unknown in a plan that rebuilds.
pub const OUTPUTS: [&str; 6] = [
    "id",
    "digest",
    "image_uri",
    "platform_digests",
    "manifest_media_type",
    "image_id",
];

/// Everything besides the files that decides what gets pushed, as the
/// `inputs` of `docker::context_hash`, or `None` while any is unknown.
/// Secrets go in as their ids and sources only, never a value or a hash of
/// one (see `secrets`).
pub fn hash_inputs(planned: &Value) -> Option<BTreeMap<String, String>> {
    let mut inputs = BTreeMap::new();
    for name in [
        "build_args",
        "labels",
        "secrets",
        "secret_env",
        "secret_files",
        "triggers",
        "tags",
        "platforms",
        "target",
        "no_cache",
        "manifest_format",
        "builder",
        "cache_inline",
    ] {
        if !planned.get(name).is_wholly_known() {
            return None;
        }
    }
    for (name, prefix) in [
        ("build_args", "build_arg"),
        ("labels", "label"),
        ("triggers", "trigger"),
    ] {
        for (k, v) in planned.get(name).to_string_map() {
            inputs.insert(format!("{prefix}:{k}"), v);
        }
    }
    super::secrets::hash_inputs(planned, &mut inputs);
    for name in ["tags", "platforms"] {
        let list: Vec<&str> = planned
            .get(name)
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        inputs.insert(name.to_string(), list.join("\n"));
    }
    for name in ["target", "manifest_format", "builder"] {
        if let Some(v) = planned.get(name).as_str() {
            inputs.insert(name.to_string(), v.to_string());
        }
    }
    let no_cache = planned.get("no_cache").as_bool().unwrap_or(false);
    inputs.insert("no_cache".into(), no_cache.to_string());
    // Inline cache metadata changes the image config; absent (false) adds
    // nothing, so the hashes of existing states stay as they were.
    if planned.get("cache_inline").as_bool() == Some(true) {
        inputs.insert("cache_inline".into(), "true".into());
    }
    Some(inputs)
}

/// Whether the plan must build and push: on create; when the hash or the
/// repository changed (or is not known yet); when refresh found the tags
/// elsewhere than where apply left them (`drifted`).
pub fn needs_rebuild(prior: &Value, planned: &Value, drifted: bool) -> bool {
    if prior.is_null() || drifted {
        return true;
    }
    ["context_hash", "repository"].iter().any(|name| {
        let new = planned.get(name);
        !new.is_wholly_known() || new != prior.get(name)
    })
}

/// The planned state: `proposed` (defaults already filled in) with
/// `context_hash` set and the outputs unknown on a rebuild, else from prior.
pub fn planned(prior: &Value, proposed: &Value, context_hash: Value, drifted: bool) -> Value {
    let mut planned = proposed.clone();
    planned.set("context_hash", context_hash);
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

/// Private state after a successful apply: the digest the tags were left at
/// and every manifest the apply pushed (the index or single manifest first,
/// then each platform's), which destroy may delete and nothing else.
pub fn pushed_marker(digest: &str, platform_digests: &[&str]) -> Vec<u8> {
    let mut manifests = vec![digest];
    manifests.extend(platform_digests.iter().filter(|d| **d != digest));
    serde_json::json!({ "pushed_digest": digest, "pushed_manifests": manifests })
        .to_string()
        .into_bytes()
}

pub fn marker_digest(private: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(private).ok()?;
    v.get("pushed_digest")?.as_str().map(str::to_string)
}

/// The manifests the last successful apply pushed, from its marker. Markers
/// written before `pushed_manifests` existed hold only `pushed_digest`; the
/// state's `platform_digests` then complete it, as only apply writes those.
/// Empty without a marker: nothing is known to be ours.
pub fn pushed_manifests(private: &[u8], state: &Value) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(private) else {
        return Vec::new();
    };
    if let Some(list) = v.get("pushed_manifests").and_then(|l| l.as_array()) {
        return list
            .iter()
            .filter_map(|d| d.as_str().map(str::to_string))
            .collect();
    }
    let Some(top) = v.get("pushed_digest").and_then(|d| d.as_str()) else {
        return Vec::new();
    };
    let mut out = vec![top.to_string()];
    for d in state.get("platform_digests").to_string_map().into_values() {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// True when the state no longer says what apply pushed: refresh found a tag
/// missing (digest null) or moved (digest differs from the marker). Without
/// a marker (state from before markers) only a missing digest counts.
pub fn drifted(prior: &Value, private: &[u8]) -> bool {
    if prior.is_null() {
        return false;
    }
    match (prior.get("digest").as_str(), marker_digest(private)) {
        (None, _) => true,
        (Some(now), Some(pushed)) => now != pushed,
        (Some(_), None) => false,
    }
}

/// What refresh makes of the state given what each tag points at now
/// (`None`: tag or repository missing). Unchanged when every tag still
/// names the state's digest; otherwise `digest`, `image_uri` and `id`
/// say what is there (null when missing), which [`drifted`] then sees.
pub fn refreshed(state: &Value, resolved: &BTreeMap<String, Option<String>>) -> Value {
    let ours = state.get("digest").as_str();
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
    let mut new = state.clone();
    let uri = observed
        .as_ref()
        .and_then(|d| state.get("repository").as_str().map(|r| format!("{r}@{d}")));
    new.set("digest", Value::opt_string(observed));
    new.set("image_uri", Value::opt_string(uri.clone()));
    new.set("id", Value::opt_string(uri));
    new
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
