//! MessagePack encoding of cty values, the form Terraform sends in every
//! DynamicValue and the one we always answer with.
//!
//! Facts this follows (go-cty `cty/msgpack`): null is nil; unknown is any
//! extension value on decode (refined unknowns use ext 12) and `d4 00 00` on
//! encode; objects are maps with every attribute present; dynamic values are
//! `[type JSON as bytes, value]`; numbers are int, float64 or decimal text.

use super::{AttrPath, DecodeError, Number, Type, Value};
use rmpv::Value as Mp;
use std::collections::BTreeMap;

/// Decodes `bytes` as a value of type `ty`.
pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let root = AttrPath::root();
    let mut rd = bytes;
    let mp = rmpv::decode::read_value(&mut rd)
        .map_err(|e| DecodeError::new(&root, format!("invalid msgpack: {e}")))?;
    if !rd.is_empty() {
        return Err(DecodeError::new(
            &root,
            "trailing bytes after msgpack value",
        ));
    }
    decode(&mp, ty, &root)
}

/// Encodes `v` as type `ty`; fails when the value does not fit the type.
pub fn to_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, DecodeError> {
    let mp = encode(v, ty, &AttrPath::root())?;
    let mut out = Vec::with_capacity(64);
    rmpv::encode::write_value(&mut out, &mp)
        .map_err(|e| DecodeError::new(&AttrPath::root(), format!("msgpack write failed: {e}")))?;
    Ok(out)
}

fn decode(mp: &Mp, ty: &Type, path: &AttrPath) -> Result<Value, DecodeError> {
    match mp {
        Mp::Ext(_, _) => return Ok(Value::Unknown),
        Mp::Nil => return Ok(Value::Null),
        _ => {}
    }
    let wrong = |what: &str| DecodeError::new(path, format!("expected {what}, got {}", kind(mp)));
    match ty {
        Type::String => match mp {
            Mp::String(s) => s
                .as_str()
                .map(|s| Value::String(s.to_string()))
                .ok_or_else(|| DecodeError::new(path, "string is not valid UTF-8")),
            _ => Err(wrong("string")),
        },
        Type::Number => decode_number(mp, path).ok_or_else(|| wrong("number")),
        Type::Bool => match mp {
            Mp::Boolean(b) => Ok(Value::Bool(*b)),
            _ => Err(wrong("bool")),
        },
        Type::List(et) | Type::Set(et) => match mp {
            Mp::Array(items) => Ok(Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, m)| decode(m, et, &path.then_index(i)))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(wrong("list")),
        },
        Type::Tuple(ets) => match mp {
            Mp::Array(items) if items.len() == ets.len() => Ok(Value::List(
                items
                    .iter()
                    .zip(ets)
                    .enumerate()
                    .map(|(i, (m, t))| decode(m, t, &path.then_index(i)))
                    .collect::<Result<_, _>>()?,
            )),
            Mp::Array(items) => Err(DecodeError::new(
                path,
                format!("tuple needs {} elements, got {}", ets.len(), items.len()),
            )),
            _ => Err(wrong("tuple")),
        },
        Type::Map(et) => match mp {
            Mp::Map(entries) => {
                let mut out = BTreeMap::new();
                for (k, m) in entries {
                    let key = key_str(k, path)?;
                    out.insert(key.to_string(), decode(m, et, &path.then_key(key))?);
                }
                Ok(Value::Map(out))
            }
            _ => Err(wrong("map")),
        },
        Type::Object(attrs) => match mp {
            Mp::Map(entries) => decode_object(entries, attrs, path),
            _ => Err(wrong("object")),
        },
        Type::Dynamic => match mp {
            Mp::Array(pair) if pair.len() == 2 => {
                let type_bytes = match &pair[0] {
                    Mp::Binary(b) => b.as_slice(),
                    Mp::String(s) => s.as_bytes(),
                    _ => return Err(wrong("dynamic [type, value] pair")),
                };
                let tj: serde_json::Value = serde_json::from_slice(type_bytes).map_err(|e| {
                    DecodeError::new(path, format!("dynamic type is not JSON: {e}"))
                })?;
                let t = Type::from_json(&tj).map_err(|e| DecodeError::new(path, e))?;
                let inner = decode(&pair[1], &t, path)?;
                Ok(Value::Dynamic(t, Box::new(inner)))
            }
            _ => Err(wrong("dynamic [type, value] pair")),
        },
    }
}

fn decode_object(
    entries: &[(Mp, Mp)],
    attrs: &BTreeMap<String, Type>,
    path: &AttrPath,
) -> Result<Value, DecodeError> {
    let mut out = BTreeMap::new();
    for (k, m) in entries {
        let key = key_str(k, path)?;
        let t = attrs
            .get(key)
            .ok_or_else(|| DecodeError::new(path, format!("unsupported attribute {key:?}")))?;
        out.insert(key.to_string(), decode(m, t, &path.then_attr(key))?);
    }
    // NOTE: cty rejects an object with missing attributes; we read them as null
    // so an older Terraform or a hand-written request still decodes.
    for name in attrs.keys() {
        out.entry(name.clone()).or_insert(Value::Null);
    }
    Ok(Value::Map(out))
}

fn key_str<'a>(k: &'a Mp, path: &AttrPath) -> Result<&'a str, DecodeError> {
    match k {
        Mp::String(s) => s
            .as_str()
            .ok_or_else(|| DecodeError::new(path, "map key is not UTF-8")),
        other => Err(DecodeError::new(
            path,
            format!("map key must be a string, got {}", kind(other)),
        )),
    }
}

fn decode_number(mp: &Mp, path: &AttrPath) -> Option<Value> {
    let _ = path;
    let n = match mp {
        Mp::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(v), _) => Number::from_i64(v),
            (None, Some(v)) => Number::from_u64(v),
            _ => return None,
        },
        Mp::F32(f) => Number::from_f64(f64::from(*f))?,
        Mp::F64(f) => Number::from_f64(*f)?,
        Mp::String(s) => Number::parse(s.as_str()?)?,
        _ => return None,
    };
    Some(Value::Number(n))
}

fn kind(mp: &Mp) -> &'static str {
    match mp {
        Mp::Nil => "null",
        Mp::Boolean(_) => "bool",
        Mp::Integer(_) | Mp::F32(_) | Mp::F64(_) => "number",
        Mp::String(_) => "string",
        Mp::Binary(_) => "binary",
        Mp::Array(_) => "array",
        Mp::Map(_) => "map",
        Mp::Ext(_, _) => "unknown",
    }
}

fn encode(v: &Value, ty: &Type, path: &AttrPath) -> Result<Mp, DecodeError> {
    let mismatch = || {
        DecodeError::new(
            path,
            format!("value {} does not fit type {}", short(v), ty.to_json()),
        )
    };
    match (v, ty) {
        // cty writes a plain unknown as fixext1 type 0 with a zero byte: d4 00 00.
        (Value::Unknown, _) => Ok(Mp::Ext(0, vec![0])),
        (Value::Null, _) => Ok(Mp::Nil),
        (Value::String(s), Type::String) => Ok(Mp::String(s.as_str().into())),
        (Value::Number(n), Type::Number) => Ok(encode_number(n)),
        (Value::Bool(b), Type::Bool) => Ok(Mp::Boolean(*b)),
        (Value::List(items), Type::List(et) | Type::Set(et)) => Ok(Mp::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| encode(x, et, &path.then_index(i)))
                .collect::<Result<_, _>>()?,
        )),
        (Value::List(items), Type::Tuple(ets)) if items.len() == ets.len() => Ok(Mp::Array(
            items
                .iter()
                .zip(ets)
                .enumerate()
                .map(|(i, (x, t))| encode(x, t, &path.then_index(i)))
                .collect::<Result<_, _>>()?,
        )),
        (Value::Map(m), Type::Map(et)) => Ok(Mp::Map(
            m.iter()
                .map(|(k, x)| {
                    Ok((
                        Mp::String(k.as_str().into()),
                        encode(x, et, &path.then_key(k))?,
                    ))
                })
                .collect::<Result<_, DecodeError>>()?,
        )),
        (Value::Map(m), Type::Object(attrs)) => {
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(DecodeError::new(
                    path,
                    format!("unsupported attribute {extra:?}"),
                ));
            }
            Ok(Mp::Map(
                attrs
                    .iter()
                    .map(|(k, t)| {
                        let x = m.get(k).unwrap_or(&Value::Null);
                        Ok((
                            Mp::String(k.as_str().into()),
                            encode(x, t, &path.then_attr(k))?,
                        ))
                    })
                    .collect::<Result<_, DecodeError>>()?,
            ))
        }
        (Value::Dynamic(t, inner), Type::Dynamic) => Ok(Mp::Array(vec![
            Mp::Binary(t.to_json_bytes()),
            encode(inner, t, path)?,
        ])),
        (Value::Dynamic(_, inner), _) => encode(inner, ty, path),
        _ => Err(mismatch()),
    }
}

fn encode_number(n: &Number) -> Mp {
    if let Some(i) = n.as_i64() {
        return Mp::from(i);
    }
    if let Some(u) = n.as_u64() {
        return Mp::from(u);
    }
    match n.as_f64() {
        Some(f) if f.is_infinite() => Mp::F64(f),
        // Only when float64 holds the number exactly; otherwise cty's decimal text.
        Some(f) if Number::from_f64(f).as_ref() == Some(n) => Mp::F64(f),
        _ => Mp::String(n.as_str().into()),
    }
}

fn short(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Map(_) => "map/object",
        Value::Dynamic(_, _) => "dynamic",
    }
}
