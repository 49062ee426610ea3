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
