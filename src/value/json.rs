//! JSON encoding of cty values. Terraform sends stored state as JSON to
//! UpgradeResourceState; we decode it with the current schema (attributes
//! missing from the JSON become null, attributes the schema no longer has are
//! dropped) and answer in msgpack.

use super::{AttrPath, DecodeError, Number, Type, Value};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

pub fn from_json(j: &Json, ty: &Type) -> Result<Value, DecodeError> {
    decode(j, ty, &AttrPath::root())
}

/// Encodes a wholly known value; unknowns have no JSON form.
pub fn to_json(v: &Value, ty: &Type) -> Result<Json, DecodeError> {
    encode(v, ty, &AttrPath::root())
}

fn decode(j: &Json, ty: &Type, path: &AttrPath) -> Result<Value, DecodeError> {
    if j.is_null() {
        return Ok(Value::Null);
    }
    let wrong = |what: &str| DecodeError::new(path, format!("expected {what}, got {j}"));
    match ty {
        Type::String => match j {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Number(n) => Ok(Value::String(n.to_string())),
            Json::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(wrong("string")),
        },
        Type::Number => match j {
            Json::Number(n) => json_number(n)
                .map(Value::Number)
                .ok_or_else(|| wrong("number")),
            Json::String(s) => Number::parse(s)
                .map(Value::Number)
                .ok_or_else(|| wrong("number")),
            _ => Err(wrong("number")),
        },
        Type::Bool => match j {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => Err(wrong("bool")),
        },
        Type::List(et) | Type::Set(et) => match j {
            Json::Array(a) => Ok(Value::List(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| decode(x, et, &path.then_index(i)))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(wrong("list")),
        },
        Type::Tuple(ets) => match j {
            Json::Array(a) if a.len() == ets.len() => Ok(Value::List(
                a.iter()
                    .zip(ets)
                    .enumerate()
                    .map(|(i, (x, t))| decode(x, t, &path.then_index(i)))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(wrong("tuple")),
        },
        Type::Map(et) => match j {
            Json::Object(o) => Ok(Value::Map(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), decode(x, et, &path.then_key(k))?)))
                    .collect::<Result<_, DecodeError>>()?,
            )),
            _ => Err(wrong("map")),
        },
        Type::Object(attrs) => match j {
            Json::Object(o) => {
                let mut out = BTreeMap::new();
                for (k, t) in attrs {
                    let x = o.get(k).unwrap_or(&Json::Null);
                    out.insert(k.clone(), decode(x, t, &path.then_attr(k))?);
                }
                Ok(Value::Map(out))
            }
            _ => Err(wrong("object")),
        },
        Type::Dynamic => match (j.get("type"), j.get("value")) {
            (Some(tj), Some(vj)) => {
                let t = Type::from_json(tj).map_err(|e| DecodeError::new(path, e))?;
                Ok(Value::Dynamic(t.clone(), Box::new(decode(vj, &t, path)?)))
            }
            _ => Err(wrong("{\"type\":..,\"value\":..}")),
        },
    }
}

fn json_number(n: &serde_json::Number) -> Option<Number> {
    if let Some(i) = n.as_i64() {
        return Some(Number::from_i64(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(Number::from_u64(u));
    }
    n.as_f64().and_then(Number::from_f64)
}

fn encode(v: &Value, ty: &Type, path: &AttrPath) -> Result<Json, DecodeError> {
    Ok(match (v, ty) {
        (Value::Unknown, _) => return Err(DecodeError::new(path, "value is not known")),
        (Value::Null, _) => Json::Null,
        (Value::String(s), Type::String) => json!(s),
        (Value::Bool(b), Type::Bool) => json!(b),
        (Value::Number(n), Type::Number) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                // Beyond float64 (or infinite): decimal text, which the decoder accepts.
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(f)
                        if Number::from_f64(f.as_f64().unwrap_or(f64::NAN)).as_ref() == Some(n) =>
                    {
                        Json::Number(f)
                    }
                    _ => json!(n.as_str()),
                }
            }
        }
        (Value::List(items), Type::List(et) | Type::Set(et)) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| encode(x, et, &path.then_index(i)))
                .collect::<Result<_, _>>()?,
        ),
        (Value::List(items), Type::Tuple(ets)) if items.len() == ets.len() => Json::Array(
            items
                .iter()
                .zip(ets)
                .enumerate()
                .map(|(i, (x, t))| encode(x, t, &path.then_index(i)))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(m), Type::Map(et)) => Json::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), encode(x, et, &path.then_key(k))?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        (Value::Map(m), Type::Object(attrs)) => Json::Object(
            attrs
                .iter()
                .map(|(k, t)| {
                    Ok((
                        k.clone(),
                        encode(m.get(k).unwrap_or(&Value::Null), t, &path.then_attr(k))?,
                    ))
                })
                .collect::<Result<_, DecodeError>>()?,
        ),
        (Value::Dynamic(t, inner), Type::Dynamic) => {
            json!({"type": t.to_json(), "value": encode(inner, t, path)?})
        }
        (Value::Dynamic(_, inner), _) => encode(inner, ty, path)?,
        _ => {
            return Err(DecodeError::new(
                path,
                format!("value does not fit type {}", ty.to_json()),
            ))
        }
    })
}
