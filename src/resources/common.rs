//! Helpers shared by resources: defaults for optional+computed attributes
//! and registry failures as diagnostics (one table for all of them).

use crate::diag::Diagnostic;
use crate::registry::RegistryError;
use crate::value::Value;

/// Fills optional+computed attributes left null in config with their defaults.
pub fn apply_defaults(planned: &mut Value, config: &Value, defaults: &[(&str, Value)]) {
    for (name, default) in defaults {
        if config.get(name).is_null() {
            planned.set(name, default.clone());
        }
    }
}

/// What the provider was doing with the registry when it failed; the advice
/// differs (a push needs write access; a missing read target was not pushed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryUse {
    Read,
    Write,
}

/// The one table from a registry failure to a summary and what to do about
/// it, for every resource and the data source.
pub fn registry_advice(e: &RegistryError, doing: RegistryUse) -> (&'static str, &'static str) {
    use RegistryError as E;
    use RegistryUse::{Read, Write};
    match (e, doing) {
        (E::NotFound { .. }, Read) => (
            "Image Not Found",
            "Check the repository, tag or digest; push the image first if it is built elsewhere.",
        ),
        (E::NotFound { .. }, Write) => (
            "Repository Not Found",
            "The registry does not know this repository; create it first (ECR needs an \
             aws_ecr_repository).",
        ),
        (E::Unauthorized { .. } | E::Auth { .. }, Read) => (
            "Registry Authentication Failed",
            "Check the registry_auth block for this host (username, password), the Docker config \
             file, or the AWS credentials for ECR.",
        ),
        (E::Unauthorized { .. } | E::Auth { .. }, Write) => (
            "Registry Authentication Failed",
            "Check the registry_auth block for this host, the Docker config file, or the AWS \
             credentials for ECR; pushing needs write access.",
        ),
        (E::Unreachable { .. }, _) => (
            "Registry Unreachable",
            "Check the address and port, that the registry is running, and network access from \
             where Terraform runs.",
        ),
        (E::Retried { .. } | E::Server { .. }, _) => (
            "Registry Error",
            "The registry kept failing; try again later.",
        ),
        (_, Read) => (
            "Image Inspection Failed",
            "The registry served something that is not a valid image.",
        ),
        (_, Write) => ("Registry Refused", ""),
    }
}

/// The hint alone, for diagnostics whose summary says what was being done.
pub fn registry_hint(e: &RegistryError, doing: RegistryUse) -> &'static str {
    registry_advice(e, doing).1
}

/// A registry failure while reading `image`, with what to do about it.
pub fn registry_diagnostic(image: &str, e: RegistryError) -> Diagnostic {
    let (summary, hint) = registry_advice(&e, RegistryUse::Read);
    Diagnostic::attr_error("image", summary, format!("Reading {image}: {e}.\n\n{hint}"))
}
