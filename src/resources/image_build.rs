//! Resource `stevedore_image_build`: build for the platforms asked, push one
//! clean manifest per platform, verify what the registry serves.

use super::common;
use crate::diag::Diagnostics;
use crate::resource::{
    ApplyRequest, ApplyResponse, Ctx, PlanRequest, PlanResponse, ReadResponse, Resource,
};
use crate::schema::{Attribute, Schema};
use crate::value::{Type, Value};
use async_trait::async_trait;

pub struct ImageBuild;

pub const TYPE_NAME: &str = "stevedore_image_build";

fn defaults() -> Vec<(&'static str, Value)> {
    vec![
        ("dockerfile", Value::string("Dockerfile")),
        ("tags", Value::string_list(["latest"])),
        ("platforms", Value::string_list(["linux/amd64"])),
        ("no_cache", Value::Bool(false)),
        ("manifest_format", Value::string("docker")),
        ("builder", Value::string("auto")),
        ("keep_remotely", Value::Bool(true)),
    ]
}

#[async_trait]
impl Resource for ImageBuild {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        let s = Type::String;
        let ms = Type::map(Type::String);
        Schema::new("Builds an image with the Docker daemon for the platforms asked (default `linux/amd64` on any host), pushes exactly one manifest per platform with no attestation entries, and reads every tag back from the registry to prove it.")
            .attr(Attribute::required("context", s.clone(), "Build context directory."))
            .attr(Attribute::optional_computed("dockerfile", s.clone(), "Dockerfile path relative to `context`. Default `Dockerfile`."))
            .attr(Attribute::required("repository", s.clone(), "Repository to push to, without tag, e.g. `123456789012.dkr.ecr.us-east-1.amazonaws.com/web`."))
            .attr(Attribute::optional_computed("tags", Type::list(s.clone()), "Tags to push. Default `[\"latest\"]`."))
            .attr(Attribute::optional_computed("platforms", Type::list(s.clone()), "Platforms to build, `os/arch[/variant]`. Default `[\"linux/amd64\"]`."))
            .attr(Attribute::optional("build_args", ms.clone(), "Build arguments (`ARG`)."))
            .attr(Attribute::optional("target", s.clone(), "Target stage of a multi-stage Dockerfile."))
            .attr(Attribute::optional("labels", ms.clone(), "Image labels."))
            .attr(Attribute::optional("secrets", ms.clone(), "BuildKit secret mounts by id (`RUN --mount=type=secret,id=...`).").sensitive())
            .attr(Attribute::optional_computed("no_cache", Type::Bool, "Build without the layer cache. Default `false`."))
            .attr(Attribute::optional_computed("manifest_format", s.clone(), "`docker` (default, widest runtime support) or `oci`."))
            .attr(Attribute::optional_computed("builder", s.clone(), "`auto` (default: BuildKit when the daemon has it), `buildkit` or `classic`."))
            .attr(Attribute::optional_computed("keep_remotely", Type::Bool, "Leave the pushed image in the registry on destroy. Default `true`."))
            .attr(Attribute::optional("triggers", ms.clone(), "Arbitrary values; any change forces a rebuild."))
            .attr(Attribute::computed("id", s.clone(), "Same as `image_uri`."))
            .attr(Attribute::computed("context_hash", s.clone(), "sha256 over the files the build would send (after `.dockerignore`), the Dockerfile and every build input."))
            .attr(Attribute::computed("digest", s.clone(), "What the tags point to: the manifest for one platform, the index for several."))
            .attr(Attribute::computed("image_uri", s.clone(), "`repository@digest`: immutable, what a task definition should use."))
            .attr(Attribute::computed("platform_digests", ms.clone(), "Platform → that platform's manifest digest."))
            .attr(Attribute::computed("manifest_media_type", s.clone(), "Media type of what the tags point to."))
            .attr(Attribute::computed("image_id", ms, "Platform → config digest (the image ID)."))
    }

    async fn plan(&self, _ctx: &Ctx, req: PlanRequest) -> PlanResponse {
        let mut planned = req.proposed.clone();
        common::apply_defaults(&mut planned, &req.config, &defaults());
        common::unknown_computed(&self.schema(), &mut planned);
        PlanResponse {
            planned,
            planned_private: req.prior_private,
            ..Default::default()
        }
    }

    async fn apply(&self, _ctx: &Ctx, req: ApplyRequest) -> ApplyResponse {
        ApplyResponse {
            new_state: req.prior,
            private: vec![],
            diags: common::not_available_yet(TYPE_NAME, "image build lands with its own issue")
                .into(),
        }
    }

    async fn read(&self, _ctx: &Ctx, state: Value, private: Vec<u8>) -> ReadResponse {
        ReadResponse {
            new_state: state,
            private,
            diags: Diagnostics::new(),
        }
    }

    async fn delete(&self, _ctx: &Ctx, _prior: Value) -> Diagnostics {
        // NO-OP: nothing can have been created by this version.
        Diagnostics::new()
    }
}
