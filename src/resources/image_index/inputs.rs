//! Static checks of `stevedore_image_index` and its values read once: the repository,
//! the sources as references, the tags.

use super::{attr, IndexModel};
use crate::diag::{Diagnostic, Diagnostics};
use crate::oci::{parse_repository, Reference};
use crate::publish::join::{JoinError, Joined};
use crate::resources::common;
use crate::resources::image_build::inputs::valid_tag;
use crate::value::{AttrPath, Value};

pub(super) fn strings(v: &Value) -> Vec<String> {
    v.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

pub(super) fn repo_of(text: &str) -> Option<Reference> {
    let (registry, repository) = parse_repository(text).ok()?;
    Some(Reference {
        registry,
        repository,
        tag: None,
        digest: None,
    })
}

pub(super) fn validate(config: &Value) -> Diagnostics {
    let m = IndexModel::from_value(config);
    let mut d = Diagnostics::new();
    if let Some(repo) = m.repository.as_str() {
        if let Err(e) = parse_repository(repo) {
            d.push(Diagnostic::attr_error(
                attr::repository,
                "Invalid Repository",
                e.to_string(),
            ));
        }
    }
    if m.sources.as_list().is_some_and(<[Value]>::is_empty) {
        d.push(Diagnostic::attr_error(
            attr::sources,
            "No Sources",
            "sources is empty; list the images to join, e.g. each platform build's image_uri.",
        ));
    }
    for (i, source) in m.sources.as_list().unwrap_or_default().iter().enumerate() {
        let Some(text) = source.as_str() else {
            continue;
        };
        if let Err(e) = Reference::parse(text) {
            d.push(
                Diagnostic::error(
                    "Invalid Source",
                    format!(
                        "{text:?} is not an image reference: {e}; use repo@sha256:… or repo:tag."
                    ),
                )
                .at(AttrPath::attr(attr::sources).then_index(i)),
            );
        }
    }
    for (i, tag) in m.tags.as_list().unwrap_or_default().iter().enumerate() {
        if let Some(t) = tag.as_str().filter(|t| !valid_tag(t)) {
            d.push(
                Diagnostic::error(
                    "Invalid Tag",
                    format!(
                        "{t:?} is not a valid tag: 1 to 128 letters, digits, _ . and -, not \
                         starting with . or -"
                    ),
                )
                .at(AttrPath::attr(attr::tags).then_index(i)),
            );
        }
    }
    if let Some(f) = m
        .manifest_format
        .as_str()
        .filter(|f| !["docker", "oci"].contains(f))
    {
        d.push(Diagnostic::attr_error(
            attr::manifest_format,
            "Invalid Manifest Format",
            format!("{f:?} is not one of `docker`, `oci`."),
        ));
    }
    d
}

/// The sources as (text, reference), when every one is known and parses.
pub(super) fn sources(model: &IndexModel) -> Option<Vec<(String, Reference)>> {
    model
        .sources
        .as_list()?
        .iter()
        .map(|s| {
            let text = s.as_str()?;
            Some((text.to_string(), Reference::parse(text).ok()?))
        })
        .collect()
}

pub(super) fn format_name(joined: &Joined) -> &'static str {
    match joined.format {
        crate::registry::assemble::Format::Docker => "docker",
        crate::registry::assemble::Format::Oci => "oci",
    }
}

pub(super) fn join_diagnostic(e: &JoinError) -> Diagnostic {
    let hint = match e {
        JoinError::Read { error, .. } => common::registry_hint(error, common::RegistryUse::Read),
        _ => "",
    };
    Diagnostic::error(
        "Sources Cannot Be Joined",
        format!("{e}. {hint}").trim_end().to_string(),
    )
    .at(AttrPath::attr(attr::sources))
}
