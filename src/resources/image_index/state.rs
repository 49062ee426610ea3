//! What `stevedore_image_index` keeps: its outputs set from what joining gives, and the
//! private record of the manifests it created (what destroy may delete).

use std::collections::BTreeMap;

use super::{IndexModel, OUTPUTS};
use crate::value::Value;

/// `state` with the outputs of what joining gives (the digest the tags will serve).
pub(super) fn with_outputs(
    state: &mut IndexModel,
    digest: &str,
    media_type: &str,
    platforms: Value,
) {
    let uri = format!("{}@{digest}", state.repository.as_str().unwrap_or_default());
    state.digest = Value::string(digest);
    state.image_uri = Value::string(&uri);
    state.id = Value::string(uri);
    state.manifest_media_type = Value::string(media_type);
    state.platform_digests = platforms;
}

/// Sets every output of `model` to `value(name)`.
pub(super) fn set_outputs(model: &mut IndexModel, value: impl Fn(&str) -> Value) {
    let mut v = model.to_value();
    for name in OUTPUTS {
        v.set(name, value(name));
    }
    *model = IndexModel::from_value(&v);
}

pub(super) fn digest_map(m: &BTreeMap<String, crate::oci::Digest>) -> Value {
    Value::string_map(m.iter().map(|(k, v)| (k.clone(), v.to_string())))
}

/// Private state: the manifests this resource created (absent before its push).
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(super) struct Created {
    pub created: Vec<String>,
}

pub(super) fn created_of(private: &[u8]) -> Option<Vec<String>> {
    serde_json::from_slice::<Created>(private)
        .ok()
        .map(|c| c.created)
}
