//! Typed models of Terraform objects: [`model!`](crate::model) declares, for
//! one resource, data source, provider block or nested block, a struct with
//! one field per attribute and a module of the attribute names, so code reads
//! `m.repository` and names `attr::repository` instead of looking attributes
//! up by a string that compiles however it is spelt.
//!
//! Each field is a [`Value`](crate::value::Value), not a Rust `String` or
//! `bool`: at plan time Terraform sends null, unknown and known values alike,
//! and a plan must keep an unknown unknown (terraform-plugin-framework's
//! `types.String` is the same three-state value). `ATTRIBUTES` lists the
//! names; each type's schema test checks that the schema declares exactly
//! these, so a name missing on either side fails a test.

/// Declares a model struct and the module holding its attribute names:
///
/// ```
/// stevedore::model! {
///     /// The data source's configuration and state.
///     pub struct ManifestModel, names manifest_attr {
///         image,
///         platform,
///     }
/// }
/// let m = ManifestModel::from_value(&stevedore::value::Value::Null);
/// assert!(m.image.is_null() && m.platform.is_null());
/// assert_eq!(manifest_attr::image, "image");
/// ```
///
/// gives `ManifestModel { pub image: Value, pub platform: Value }` with
/// `from_value`, `to_value`, `into_value` and `ATTRIBUTES`, and
/// `mod manifest_attr { pub const image: &str = "image"; ... }`.
#[macro_export]
macro_rules! model {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident, names $names:ident {
            $($(#[$fmeta:meta])* $field:ident),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        $vis struct $name {
            $($(#[$fmeta])* pub $field: $crate::value::Value,)*
        }

        /// The attribute names of the model beside it, for the schema and
        /// for diagnostics that point at an attribute.
        #[allow(non_upper_case_globals, dead_code)]
        $vis mod $names {
            $(pub const $field: &str = stringify!($field);)*
        }

        #[allow(dead_code)]
        impl $name {
            /// Every attribute, in declaration order.
            pub const ATTRIBUTES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The attributes of an object value; null for those it lacks
            /// (and for all of them when `v` is null or not an object).
            pub fn from_value(v: &$crate::value::Value) -> Self {
                Self { $($field: v.get(stringify!($field)).clone(),)* }
            }

            /// The object value holding every attribute.
            pub fn to_value(&self) -> $crate::value::Value {
                self.clone().into_value()
            }

            pub fn into_value(self) -> $crate::value::Value {
                $crate::value::Value::object([$((stringify!($field), self.$field),)*])
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::value::Value;

    crate::model! {
        /// A model for the test.
        pub struct Pair, names pair_attr {
            left,
            right,
        }
    }

    #[test]
    fn a_model_reads_and_writes_its_attributes_by_field() {
        let v = Value::object([("left", Value::string("l")), ("right", Value::Unknown)]);
        let m = Pair::from_value(&v);
        assert_eq!(m.left.as_str(), Some("l"));
        assert!(m.right.is_unknown());
        assert_eq!(m.to_value(), v);
        assert_eq!(Pair::ATTRIBUTES, &[pair_attr::left, pair_attr::right]);
    }

    #[test]
    fn a_missing_or_null_object_gives_null_attributes() {
        let m = Pair::from_value(&Value::Null);
        assert!(m.left.is_null() && m.right.is_null());
        let partial = Pair::from_value(&Value::object([("left", Value::Bool(true))]));
        assert_eq!(partial.left, Value::Bool(true));
        assert!(partial.right.is_null());
    }
}
