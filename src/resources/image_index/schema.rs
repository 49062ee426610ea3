//! The schema of `stevedore_image_index`: every attribute with the text the registry docs
//! and `terraform providers schema` show.

use super::attr;
use crate::schema::{Attribute, Schema};
use crate::value::Type;

pub(super) fn schema() -> Schema {
    let s = Type::String;
    Schema::new(
        "Joins images built elsewhere (each job of a CI matrix building its own platform, or \
         builds in other states) into one index: each source's platform manifests, attestation \
         entries dropped, sorted by os/architecture/variant, copied or mounted into \
         `repository`, tagged and read back as `stevedore_image_build` does. Import with \
         `<repository>:<tag>`.",
    )
    .attr(Attribute::required(
        attr::repository,
        s.clone(),
        "Repository to push the index to, without tag or digest. A change replaces the resource.",
    ))
    .attr(Attribute::optional_computed(
        attr::tags,
        Type::list(s.clone()),
        "Tags to point at the index. Default `[\"latest\"]`.",
    ))
    .attr(Attribute::required(
        attr::sources,
        Type::list(s.clone()),
        "Images to join, by digest (`repo@sha256:…`, e.g. another build's `image_uri`) or tag, \
         in this or another registry. Each gives its platform manifests; a platform given twice, \
         or Docker and OCI media types mixed, is an error. With every source pinned by digest, \
         `digest` and `image_uri` are known at plan time.",
    ))
    .attr(Attribute::optional_computed(
        attr::manifest_format,
        s.clone(),
        "`docker` (manifest list) or `oci` (image index): the sources' own media types, which \
         copying keeps (changing them would change every digest). Default: the sources' family; \
         a value that differs from it is an error.",
    ))
    .attr(Attribute::optional_computed(
        attr::keep_remotely,
        Type::Bool,
        "Leave the index and manifests in the registry on destroy. Default `true`. With `false`, \
         destroy deletes what this resource created if no other tag names it.",
    ))
    .attr(Attribute::computed(
        attr::id,
        s.clone(),
        "Same as `image_uri`.",
    ))
    .attr(Attribute::computed(
        attr::digest,
        s.clone(),
        "What the tags point to: the index (the manifest itself when the sources give one \
         platform).",
    ))
    .attr(Attribute::computed(
        attr::image_uri,
        s.clone(),
        "`repository@digest`: immutable, what a task definition should use.",
    ))
    .attr(Attribute::computed(
        attr::platform_digests,
        Type::map(s.clone()),
        "Platform → that platform's manifest digest.",
    ))
    .attr(Attribute::computed(
        attr::manifest_media_type,
        s,
        "Media type of what the tags point to.",
    ))
}
