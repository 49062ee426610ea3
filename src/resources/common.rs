//! Helpers shared by resources: defaults for optional+computed attributes
//! and registry failures as diagnostics.

use crate::diag::Diagnostic;
use crate::value::Value;

/// Fills optional+computed attributes left null in config with their defaults.
pub fn apply_defaults(planned: &mut Value, config: &Value, defaults: &[(&str, Value)]) {
    for (name, default) in defaults {
        if config.get(name).is_null() {
            planned.set(name, default.clone());
        }
    }
}

/// A registry failure while reading `image`, with what to do about it.
pub fn registry_diagnostic(image: &str, e: crate::registry::RegistryError) -> Diagnostic {
    use crate::registry::RegistryError as E;
    let (summary, hint) = match &e {
        E::NotFound { .. } => ("Image Not Found", "Check the repository, tag or digest; push the image first if it is built elsewhere."),
        E::Unauthorized { .. } | E::Auth { .. } => ("Registry Authentication Failed", "Check the registry_auth block for this host (username, password), the Docker config file, or the AWS credentials for ECR."),
        E::Unreachable { .. } => ("Registry Unreachable", "Check the address and port, that the registry is running, and network access from where Terraform runs."),
        E::Server { .. } => ("Registry Error", "The registry failed; try again later."),
        _ => ("Image Inspection Failed", "The registry served something that is not a valid image."),
    };
    Diagnostic::attr_error("image", summary, format!("Reading {image}: {e}.\n\n{hint}"))
}
