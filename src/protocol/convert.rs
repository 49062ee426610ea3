//! Domain ⇄ protobuf: schemas, diagnostics, attribute paths and DynamicValues.
//! Nothing else in the crate builds protobuf messages.

use super::proto as pb;
use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::value::{self, AttrPath, Step, Type, Value};

pub fn schema(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(block(&s.block)),
    }
}

fn block(b: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: b.attributes.iter().map(attribute).collect(),
        block_types: b.blocks.iter().map(nested).collect(),
        description: b.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
    }
}

fn attribute(a: &Attribute) -> pb::schema::Attribute {
    pb::schema::Attribute {
        name: a.name.clone(),
        r#type: a.ty.to_json_bytes(),
        nested_type: None,
        description: a.description.clone(),
        required: a.required,
        optional: a.optional,
        computed: a.computed,
        sensitive: a.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
        write_only: a.write_only,
    }
}

fn nested(n: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    let nesting = match n.nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
    };
    pb::schema::NestedBlock {
        type_name: n.name.clone(),
        block: Some(block(&n.block)),
        nesting: nesting as i32,
        min_items: n.min_items,
        max_items: n.max_items,
    }
}

pub fn diagnostics(d: Diagnostics) -> Vec<pb::Diagnostic> {
    d.0.into_iter().map(diagnostic).collect()
}

pub fn diagnostic(d: Diagnostic) -> pb::Diagnostic {
    let severity = match d.severity {
        Severity::Error => pb::diagnostic::Severity::Error,
        Severity::Warning => pb::diagnostic::Severity::Warning,
    };
    pb::Diagnostic {
        severity: severity as i32,
        summary: d.summary,
        detail: d.detail,
        attribute: d.attribute.as_ref().map(path),
    }
}

pub fn path(p: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .steps()
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    Step::Attr(n) => Selector::AttributeName(n.clone()),
                    Step::Key(k) => Selector::ElementKeyString(k.clone()),
                    Step::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

/// Decodes a DynamicValue: msgpack when present, else JSON, else null.
pub fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<Value, Diagnostic> {
    let Some(dv) = dv else { return Ok(Value::Null) };
    let decoded = if !dv.msgpack.is_empty() {
        value::from_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        serde_json::from_slice::<serde_json::Value>(&dv.json)
            .map_err(|e| value::DecodeError {
                path: AttrPath::root(),
                message: format!("invalid JSON: {e}"),
            })
            .and_then(|j| value::from_json(&j, ty))
    } else {
        return Ok(Value::Null);
    };
    decoded.map_err(|e| {
        let d = Diagnostic::error(
            "Invalid Value From Terraform",
            format!(
                "The {what} sent by Terraform could not be decoded: {e}. This usually means \
                 Terraform and the provider disagree on the schema; run `terraform init -upgrade` \
                 and try again."
            ),
        );
        if e.path.is_empty() {
            d
        } else {
            d.at(e.path)
        }
    })
}

pub fn encode(v: &Value, ty: &Type, what: &str) -> Result<pb::DynamicValue, Diagnostic> {
    value::to_msgpack(v, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| Diagnostic::internal(format!("the {what} does not fit its own schema: {e}")))
}
