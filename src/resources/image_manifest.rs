//! Data source `stevedore_image_manifest`: what a registry serves for an
//! image reference, and whether it provides the platform asked.

use super::common::registry_diagnostic;
use crate::diag::{Diagnostic, Diagnostics};
use crate::oci::{Platform, Reference};
use crate::registry::{self, InspectError, Inspection};
use crate::resource::{Ctx, DataSource};
use crate::schema::{Attribute, Schema};
use crate::value::{Type, Value};
use async_trait::async_trait;

pub struct ImageManifest;

pub const TYPE_NAME: &str = "stevedore_image_manifest";

crate::model! {
    /// The data source's configuration (`image`, `platform`) and what it reads.
    pub struct ManifestModel, names attr {
        image,
        platform,
        id,
        digest,
        media_type,
        is_index,
        platforms,
        attestation_count,
        platform_digest,
        image_uri,
        os,
        architecture,
        variant,
        referrers,
    }
}

#[async_trait]
impl DataSource for ImageManifest {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        let s = Type::String;
        Schema::new(
            "Inspects an image in a registry: every manifest media type is accepted, attestation \
             entries are counted apart, and `platform` makes the read fail at plan time when the \
             image does not provide it (the ECS `CannotPullContainerError`, caught early).",
        )
        .attr(Attribute::required(
            attr::image,
            s.clone(),
            "Image reference: `host/repo:tag`, `host/repo@sha256:...` or \
             `host/repo:tag@sha256:...`. With both, the digest is read and the tag is not looked \
             at, as Docker does.",
        ))
        .attr(Attribute::optional(
            attr::platform,
            s.clone(),
            "Platform to resolve and require, `os/arch[/variant]` such as `linux/amd64` or \
             `linux/arm64`. Without it, a single manifest or an index with one platform is \
             resolved; otherwise the platform attributes are null.",
        ))
        .attr(Attribute::computed(
            attr::id,
            s.clone(),
            "The reference, as given.",
        ))
        .attr(Attribute::computed(
            attr::digest,
            s.clone(),
            "Digest of what the reference points to (the index for a multi-platform image).",
        ))
        .attr(Attribute::computed(
            attr::media_type,
            s.clone(),
            "Media type of that manifest or index.",
        ))
        .attr(Attribute::computed(
            attr::is_index,
            Type::Bool,
            "True for an OCI index or Docker manifest list.",
        ))
        .attr(Attribute::computed(
            attr::platforms,
            Type::list(s.clone()),
            "Platforms provided, `os/arch[/variant]`, attestation entries excluded.",
        ))
        .attr(Attribute::computed(
            attr::attestation_count,
            Type::Number,
            "Number of attestation manifests (buildx provenance/SBOM) in the index.",
        ))
        .attr(Attribute::computed(
            attr::platform_digest,
            s.clone(),
            "Digest of the manifest for the requested platform (or the only one).",
        ))
        .attr(Attribute::computed(
            attr::image_uri,
            s.clone(),
            "`repository@platform_digest`: an immutable reference for task definitions.",
        ))
        .attr(Attribute::computed(
            attr::os,
            s.clone(),
            "Operating system from the chosen manifest's config.",
        ))
        .attr(Attribute::computed(
            attr::architecture,
            s.clone(),
            "Architecture from the chosen manifest's config.",
        ))
        .attr(Attribute::computed(
            attr::variant,
            s.clone(),
            "CPU variant from the chosen manifest's config, if any.",
        ))
        .attr(Attribute::computed(
            attr::referrers,
            Type::list(Type::object([
                ("digest", s.clone()),
                ("artifact_type", s.clone()),
                ("subject", s.clone()),
                ("annotations", Type::map(s)),
            ])),
            "The OCI 1.1 referrers (provenance, SBOMs, signatures) of `digest` and of the \
             resolved platform manifest: `digest`, `artifact_type`, `subject` (which of the two \
             it refers to) and `annotations`. Read from the registry's referrers API, or else \
             from the `sha256-<hex>` referrers tag. A registry that cannot list them gives an \
             empty list (the provider's log says why).",
        ))
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let config = ManifestModel::from_value(config);
        let mut d = Diagnostics::new();
        if let Some(image) = config.image.as_str() {
            if let Err(e) = Reference::parse(image) {
                d.push(Diagnostic::attr_error(
                    attr::image,
                    "Invalid Image Reference",
                    format!("{e}"),
                ));
            }
        }
        if let Some(p) = config.platform.as_str() {
            if let Err(e) = Platform::parse(p) {
                d.push(Diagnostic::attr_error(
                    attr::platform,
                    "Invalid Platform",
                    format!("{e}"),
                ));
            }
        }
        d
    }

    async fn read(&self, ctx: &Ctx, config: &Value) -> Result<Value, Diagnostics> {
        let d = self.validate(config);
        if d.has_errors() {
            return Err(d);
        }
        let config = ManifestModel::from_value(config);
        let image = config.image.as_str().unwrap_or_default().to_string();
        let reference = Reference::parse(&image).map_err(|e| {
            Diagnostic::attr_error(attr::image, "Invalid Image Reference", e.to_string())
        })?;
        let platform = match config.platform.as_str() {
            Some(p) => Some(Platform::parse(p).map_err(|e| {
                Diagnostic::attr_error(attr::platform, "Invalid Platform", e.to_string())
            })?),
            None => None,
        };
        let provider = ctx.provider()?;
        let inspected = tokio::select! {
            r = registry::inspect(&provider.registry, &reference, platform.as_ref()) => r,
            _ = ctx.cancel.cancelled() => return Err(Diagnostic::error(
                "Read Cancelled",
                format!("Reading {image} was interrupted."),
            )
            .into()),
        };
        let inspection = inspected.map_err(|e| inspect_diagnostic(&image, e))?;
        let referrers = match referrers_of(&provider.registry, &reference, &inspection).await {
            Ok(found) => found,
            Err(e) => {
                // The image itself was read; evidence that cannot be listed is no reason to
                // fail a plan.
                tracing::warn!(image, error = %e, "could not list the image's referrers");
                Vec::new()
            }
        };
        Ok(state(&image, config, inspection, referrers))
    }
}

fn state(image: &str, config: ManifestModel, i: Inspection, referrers: Vec<Value>) -> Value {
    ManifestModel {
        image: Value::string(image),
        platform: config.platform,
        id: Value::string(image),
        digest: Value::string(i.digest),
        media_type: Value::string(i.media_type),
        is_index: Value::Bool(i.is_index),
        platforms: Value::string_list(i.platforms),
        attestation_count: Value::int(i.attestation_count),
        platform_digest: Value::opt_string(i.platform_digest),
        image_uri: Value::opt_string(i.image_uri),
        os: Value::opt_string(i.os),
        architecture: Value::opt_string(i.architecture),
        variant: Value::opt_string(i.variant),
        referrers: Value::List(referrers),
    }
    .into_value()
}

/// The referrers of the digest read and of the platform manifest resolved.
async fn referrers_of(
    registry: &registry::RegistryClient,
    reference: &Reference,
    inspection: &Inspection,
) -> Result<Vec<Value>, registry::RegistryError> {
    let repo = Reference {
        tag: None,
        digest: None,
        ..reference.clone()
    };
    let mut subjects = vec![&inspection.digest];
    if let Some(platform) = &inspection.platform_digest {
        if platform != &inspection.digest {
            subjects.push(platform);
        }
    }
    // Both lists at once: a plan waits on them for every data source.
    let lists = subjects
        .iter()
        .map(|subject| registry.referrers(&repo, subject));
    let lists = futures::future::try_join_all(lists).await?;
    let mut out = Vec::new();
    for (subject, found) in subjects.into_iter().zip(lists) {
        for d in found.descriptors {
            let annotations = d.annotations().clone().unwrap_or_default();
            out.push(Value::object([
                ("digest", Value::string(d.digest().to_string())),
                (
                    "artifact_type",
                    Value::opt_string(d.artifact_type().as_ref().map(ToString::to_string)),
                ),
                ("subject", Value::string(subject.as_str())),
                ("annotations", Value::string_map(annotations)),
            ]));
        }
    }
    Ok(out)
}

/// Turns an inspection failure into a diagnostic on the attribute to blame.
pub fn inspect_diagnostic(image: &str, e: InspectError) -> Diagnostic {
    match e {
        InspectError::PlatformMissing { .. } => Diagnostic::attr_error(
            attr::platform,
            "Platform Not In Image",
            format!(
                "{e}.\n\nA runtime that needs this platform (ECS Fargate, Lambda, Cloud Run) would \
                 fail to pull it with `CannotPullContainerError`. Rebuild the image for this \
                 platform, e.g. with stevedore_image_build and platforms = [\"linux/amd64\"], or \
                 `docker buildx build --platform linux/amd64 --provenance=false`."
            ),
        ),
        InspectError::Registry(r) => registry_diagnostic(image, r),
        other => {
            Diagnostic::attr_error(attr::image, "Invalid Image In Registry", other.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_declares_the_model() {
        crate::schema::assert_declares(&ImageManifest.schema().block, ManifestModel::ATTRIBUTES);
    }
}
