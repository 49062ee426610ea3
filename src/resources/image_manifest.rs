//! Data source `stevedore_image_manifest`: what a registry serves for an
//! image reference, and whether it provides the platform asked.

use crate::diag::{Diagnostic, Diagnostics};
use crate::resource::{Ctx, DataSource};
use crate::schema::{Attribute, Schema};
use crate::value::{Type, Value};
use async_trait::async_trait;

pub struct ImageManifest;

pub const TYPE_NAME: &str = "stevedore_image_manifest";

#[async_trait]
impl DataSource for ImageManifest {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        let s = Type::String;
        Schema::new("Inspects an image in a registry: every manifest media type is accepted, attestation entries are counted apart, and `platform` makes the read fail at plan time when the image does not provide it (the ECS `CannotPullContainerError`, caught early).")
            .attr(Attribute::required("image", s.clone(), "Image reference: `host/repo:tag`, `host/repo@sha256:...` or `host/repo:tag@sha256:...`."))
            .attr(Attribute::optional("platform", s.clone(), "Platform to resolve and require, `os/arch[/variant]` such as `linux/amd64` or `linux/arm64`."))
            .attr(Attribute::computed("id", s.clone(), "The reference, as given."))
            .attr(Attribute::computed("digest", s.clone(), "Digest of what the reference points to (the index for a multi-platform image)."))
            .attr(Attribute::computed("media_type", s.clone(), "Media type of that manifest or index."))
            .attr(Attribute::computed("is_index", Type::Bool, "True for an OCI index or Docker manifest list."))
            .attr(Attribute::computed("platforms", Type::list(s.clone()), "Platforms provided, `os/arch[/variant]`, attestation entries excluded."))
            .attr(Attribute::computed("attestation_count", Type::Number, "Number of attestation manifests (buildx provenance/SBOM) in the index."))
            .attr(Attribute::computed("platform_digest", s.clone(), "Digest of the manifest for the requested platform (or the only one)."))
            .attr(Attribute::computed("image_uri", s.clone(), "`repository@platform_digest`: an immutable reference for task definitions."))
            .attr(Attribute::computed("os", s.clone(), "Operating system from the chosen manifest's config."))
            .attr(Attribute::computed("architecture", s.clone(), "Architecture from the chosen manifest's config."))
            .attr(Attribute::computed("variant", s, "CPU variant from the chosen manifest's config, if any."))
    }

    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    async fn read(&self, _ctx: &Ctx, _config: &Value) -> Result<Value, Diagnostics> {
        Err(Diagnostic::error("Not Available Yet", "registry client pending").into())
    }
}
