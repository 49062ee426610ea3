//! The schema of `stevedore_image_build`: every attribute with the text the
//! registry docs and `terraform providers schema` show.

use super::{attr, inputs};
use crate::schema::{Attribute, Schema};
use crate::value::Type;

pub(super) fn schema() -> Schema {
    let s = Type::String;
    let ms = Type::map(Type::String);
    let [provenance, signing_key_file, provenance_digests] = super::evidence::attributes();
    Schema::new(
        "Builds an image with the Docker daemon for the platforms asked (default `linux/amd64` on \
         any host), pushes exactly one manifest per platform with no attestation entries, and \
         reads every tag back from the registry to prove it. Import is not supported: declare the \
         resource and apply.",
    )
    .attr(Attribute::required(
        attr::context,
        s.clone(),
        "Build context directory.",
    ))
    .attr(Attribute::optional_computed(
        attr::dockerfile,
        s.clone(),
        "Dockerfile path relative to `context`; it must stay inside the context. Default \
         `Dockerfile`.",
    ))
    .attr(Attribute::required(
        attr::repository,
        s.clone(),
        "Repository to push to, without tag or digest, e.g. \
         `123456789012.dkr.ecr.us-east-1.amazonaws.com/web`. A change replaces the resource.",
    ))
    .attr(Attribute::optional_computed(
        attr::tags,
        Type::list(s.clone()),
        "Tags to push. Default `[\"latest\"]`.",
    ))
    .attr(Attribute::optional_computed(
        attr::platforms,
        Type::list(s.clone()),
        "Platforms to build, `os/arch[/variant]`. Default `[\"linux/amd64\"]`. One platform: the \
         tags point at its manifest; several: at an index listing exactly these.",
    ))
    .attr(Attribute::optional(
        attr::build_args,
        ms.clone(),
        "Build arguments (`ARG`).",
    ))
    .attr(Attribute::optional(
        attr::target,
        s.clone(),
        "Target stage of a multi-stage Dockerfile.",
    ))
    .attr(Attribute::optional(
        attr::labels,
        ms.clone(),
        "Image labels.",
    ))
    .attr(
        Attribute::optional(
            attr::secrets,
            ms.clone(),
            "BuildKit secret mounts by id (`RUN --mount=type=secret,id=...`) with their values. \
             Sensitive and write-only: Terraform 1.11 and later keep no value in plan or state; \
             earlier versions keep it in state (sensitive), so there prefer `secret_env` or \
             `secret_files`, whose values never enter Terraform. Only the ids enter \
             `context_hash`, so a changed value alone plans no rebuild (and BuildKit reuses cached \
             steps: set `no_cache` to run them again).",
        )
        .sensitive()
        .write_only(),
    )
    .attr(Attribute::optional(
        attr::secret_env,
        ms.clone(),
        "Secret id → name of an environment variable of the provider process (it inherits \
         terraform's environment); read at apply.",
    ))
    .attr(Attribute::optional(
        attr::secret_files,
        ms.clone(),
        "Secret id → path of a file (relative to the directory terraform runs in, at most 500 \
         KiB); read at apply.",
    ))
    .attr(Attribute::optional(
        attr::cache_from,
        Type::list(s.clone()),
        "Registry images (`repository:tag` or `@digest`) to take build cache from, pulled by the \
         daemon with the provider's registry credentials. Not a build input: changing it plans no \
         rebuild.",
    ))
    .attr(Attribute::optional_computed(
        attr::cache_inline,
        Type::Bool,
        "Embed BuildKit inline cache metadata in the pushed image, so a later build can name it in \
         `cache_from`. Default `false`.",
    ))
    .attr(Attribute::optional(
        attr::build_log_file,
        s.clone(),
        "File to write the full build output to as the build runs (so `tail -f` shows progress in \
         CI); relative paths are from the directory terraform runs in. Build steps also go to the \
         provider log at `info`.",
    ))
    .attr(Attribute::optional_computed(
        attr::no_cache,
        Type::Bool,
        "Build without the layer cache. Default `false`.",
    ))
    .attr(Attribute::optional_computed(
        attr::manifest_format,
        s.clone(),
        &format!(
            "One of {}: `docker` (default, widest runtime support) or `oci` media types.",
            quoted(&inputs::MANIFEST_FORMATS)
        ),
    ))
    .attr(Attribute::optional_computed(
        attr::builder,
        s.clone(),
        &format!(
            "One of {}. `auto` (default) uses BuildKit when the daemon offers it (Docker 18.09+ on \
             Linux), else the classic builder; `secrets` need BuildKit.",
            quoted(&inputs::BUILDERS)
        ),
    ))
    .attr(Attribute::optional_computed(
        attr::keep_remotely,
        Type::Bool,
        "Leave the pushed image in the registry on destroy. Default `true`. With `false`, destroy \
         deletes the manifests this resource created (not an identical image the registry already \
         held) if no other tag names them and the registry allows it.",
    ))
    .attr(Attribute::optional(
        attr::triggers,
        ms.clone(),
        "Arbitrary values; any change forces a rebuild.",
    ))
    .attr(Attribute::computed(
        attr::id,
        s.clone(),
        "Same as `image_uri`.",
    ))
    .attr(Attribute::computed(
        attr::context_hash,
        s.clone(),
        "sha256 over the files the build would send (after `.dockerignore`), the Dockerfile and \
         every build input. Known at plan time.",
    ))
    .attr(Attribute::computed(
        attr::digest,
        s.clone(),
        "What the tags point to: the manifest for one platform, the index for several.",
    ))
    .attr(Attribute::computed(
        attr::image_uri,
        s.clone(),
        "`repository@digest`: immutable, what a task definition should use.",
    ))
    .attr(Attribute::computed(
        attr::platform_digests,
        ms.clone(),
        "Platform → that platform's manifest digest.",
    ))
    .attr(Attribute::computed(
        attr::manifest_media_type,
        s.clone(),
        "Media type of what the tags point to.",
    ))
    .attr(Attribute::computed(
        attr::image_id,
        ms.clone(),
        "Platform → config digest (the image ID).",
    ))
    .attr(provenance)
    .attr(signing_key_file)
    .attr(provenance_digests)
    .block(super::evidence::attach_block())
    .attr(Attribute::computed(
        attr::built_by,
        ms,
        "Platform → the name of the provider `builder` whose daemon built it (`default` for the \
         provider's own daemon). Which daemon builds a platform is not a build input: moving a \
         platform to another builder plans nothing, and this keeps naming the daemon that built \
         the image in the registry until the next build.",
    ))
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
