//! Terraform's type system (cty) as the plugin protocol carries it: types,
//! values with null and unknown, attribute paths, and the two wire encodings
//! (MessagePack in `msgpack`, JSON in `json`). No protobuf and no provider
//! logic here.
//!
//! Written by hand: no maintained crate implements cty's msgpack/JSON mapping
//! (tf-provider's serde approach cannot carry unknowns in arbitrary places).

mod json;
mod model;
mod msgpack;
mod path;
mod types;

pub use json::{from_json, to_json};
pub use msgpack::{from_msgpack, to_msgpack};
pub use path::{AttrPath, Step};
pub use types::Type;

use std::collections::BTreeMap;

/// A cty value, interpreted against a [`Type`]. Lists, sets and tuples are
/// `List`; maps and objects are `Map`. `Dynamic` carries a value whose type is
/// only known at run time (schema type `"dynamic"`).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Unknown,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Dynamic(Type, Box<Value>),
}

/// A cty number kept as canonical decimal text, so that integers of any size
/// round-trip exactly; conversion to msgpack picks int, float or string as cty does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Number(String);

impl Number {
    pub fn from_i64(n: i64) -> Self {
        Number(n.to_string())
    }
    pub fn from_u64(n: u64) -> Self {
        Number(n.to_string())
    }
    /// `None` for NaN, which cty cannot represent.
    pub fn from_f64(f: f64) -> Option<Self> {
        if f.is_nan() {
            return None;
        }
        if f.is_infinite() {
            return Some(Number(if f > 0.0 { "+Inf" } else { "-Inf" }.into()));
        }
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            return Some(Number((f as i64).to_string()));
        }
        Some(Number(format!("{f}")))
    }
    /// Parses decimal text (what cty writes for numbers beyond float64).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Some(Self::from_i64(i));
        }
        if let Ok(u) = t.parse::<u64>() {
            return Some(Self::from_u64(u));
        }
        let valid = !t.is_empty()
            && t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
            && t.chars().any(|c| c.is_ascii_digit());
        if !valid {
            return None;
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() && format!("{f}") == t => Self::from_f64(f),
            Ok(f) if f.is_finite() && f.fract() != 0.0 => Self::from_f64(f),
            _ => Some(Number(t.to_string())),
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
    pub fn as_u64(&self) -> Option<u64> {
        self.0.parse().ok()
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self.0.as_str() {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            t => t.parse().ok(),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Value {
    /// A map of strings as a `BTreeMap`, leaving out entries that are not
    /// known strings; empty for anything that is not a map.
    pub fn to_string_map(&self) -> std::collections::BTreeMap<String, String> {
        self.as_map()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    pub fn int(i: i64) -> Value {
        Value::Number(Number::from_i64(i))
    }
    pub fn opt_string(s: Option<impl Into<String>>) -> Value {
        s.map(|s| Value::String(s.into())).unwrap_or(Value::Null)
    }
    pub fn string_list<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
        Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
    }
    pub fn string_map<I: IntoIterator<Item = (K, S)>, K: Into<String>, S: Into<String>>(
        items: I,
    ) -> Value {
        Value::Map(
            items
                .into_iter()
                .map(|(k, v)| (k.into(), Value::String(v.into())))
                .collect(),
        )
    }
    pub fn object<I: IntoIterator<Item = (&'static str, Value)>>(items: I) -> Value {
        Value::Map(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    /// True when no unknown appears anywhere inside.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(items) => items.iter().all(Value::is_wholly_known),
            Value::Map(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }
    /// An attribute of an object value; `Null` when absent or when `self` is not an object.
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Map(m) => m.get(name).unwrap_or(&Value::Null),
            Value::Dynamic(_, v) => v.get(name),
            _ => &Value::Null,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    /// Sets an attribute on an object value (no-op on anything else).
    pub fn set(&mut self, name: &str, v: Value) {
        if let Value::Map(m) = self {
            m.insert(name.to_string(), v);
        }
    }
    /// The value at `path`, `Null` where it does not exist.
    pub fn at(&self, path: &AttrPath) -> &Value {
        let mut cur = self;
        for step in path.steps() {
            cur = match (step, cur) {
                (Step::Attr(n), v) => v.get(n),
                (Step::Key(k), Value::Map(m)) => m.get(k).unwrap_or(&Value::Null),
                (Step::Index(i), Value::List(l)) => usize::try_from(*i)
                    .ok()
                    .and_then(|i| l.get(i))
                    .unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
        }
        cur
    }
}

/// A decode failure that names where in the value it happened.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct DecodeError {
    pub path: AttrPath,
    pub message: String,
}

impl DecodeError {
    pub(crate) fn new(path: &AttrPath, message: impl Into<String>) -> Self {
        DecodeError {
            path: path.clone(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
