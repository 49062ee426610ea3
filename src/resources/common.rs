//! Helpers shared by resources: defaults for optional+computed attributes,
//! unknown computed values on create, and the "not available yet" answer.

use crate::diag::Diagnostic;
use crate::schema::Schema;
use crate::value::Value;

/// Fills optional+computed attributes left null in config with their defaults.
pub fn apply_defaults(planned: &mut Value, config: &Value, defaults: &[(&str, Value)]) {
    for (name, default) in defaults {
        if config.get(name).is_null() {
            planned.set(name, default.clone());
        }
    }
}

/// Marks every computed-only attribute unknown: their values come from apply.
pub fn unknown_computed(schema: &Schema, planned: &mut Value) {
    for a in &schema.block.attributes {
        if a.computed && !a.optional {
            planned.set(&a.name, Value::Unknown);
        }
    }
}

pub fn not_available_yet(type_name: &str, issue: &str) -> Diagnostic {
    Diagnostic::error(
        "Not Available Yet",
        format!(
            "{type_name} is declared so that `terraform validate` and `plan` know its schema, but this version of \
             stevedore cannot apply it yet ({issue}). Nothing was changed. Remove the resource or upgrade the provider."
        ),
    )
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
