//! Schema builder: attributes and nested blocks with required/optional/
//! computed/sensitive flags and Markdown descriptions. A schema knows the cty
//! type it implies, which is what every DynamicValue is decoded with.

use crate::value::{Type, Value};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

#[derive(Clone, Debug, Default)]
pub struct Block {
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub description: String,
}

#[derive(Clone, Debug)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// Terraform 1.11 and later never store its value (plan and state hold
    /// null); earlier versions do not know the flag.
    pub write_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
    Map,
}

#[derive(Clone, Debug)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

impl Schema {
    pub fn new(description: &str) -> Self {
        Schema {
            version: 0,
            block: Block {
                description: description.to_string(),
                ..Block::default()
            },
        }
    }
    pub fn version(mut self, v: i64) -> Self {
        self.version = v;
        self
    }
    pub fn attr(mut self, a: Attribute) -> Self {
        self.block.attributes.push(a);
        self
    }
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.block.blocks.push(b);
        self
    }
    pub fn ty(&self) -> Type {
        self.block.ty()
    }
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.block.attributes.iter().find(|a| a.name == name)
    }
}

/// Checks that a block declares exactly the attributes and nested blocks a
/// model has (in any order): for each type's schema test.
#[cfg(test)]
pub fn assert_declares(block: &Block, model: &[&str]) {
    let mut declared: Vec<&str> = block.attributes.iter().map(|a| a.name.as_str()).collect();
    declared.extend(block.blocks.iter().map(|b| b.name.as_str()));
    declared.sort_unstable();
    let mut wanted = model.to_vec();
    wanted.sort_unstable();
    assert_eq!(declared, wanted, "the schema and the model disagree");
}

impl Block {
    pub fn new(description: &str) -> Self {
        Block {
            description: description.to_string(),
            ..Block::default()
        }
    }
    pub fn attr(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    /// The object type this block implies (configschema's ImpliedType).
    pub fn ty(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for b in &self.blocks {
            let inner = b.block.ty();
            let t = match b.nesting {
                Nesting::Single => inner,
                Nesting::List => Type::list(inner),
                Nesting::Set => Type::set(inner),
                Nesting::Map => Type::map(inner),
            };
            attrs.insert(b.name.clone(), t);
        }
        Type::Object(attrs)
    }
}

impl Attribute {
    fn new(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            name: name.to_string(),
            ty,
            description: description.to_string(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
        }
    }
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            required: true,
            ..Self::new(name, ty, description)
        }
    }
    pub fn optional(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            optional: true,
            ..Self::new(name, ty, description)
        }
    }
    /// Optional, and filled in by the provider when the user leaves it out.
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            optional: true,
            computed: true,
            ..Self::new(name, ty, description)
        }
    }
    pub fn computed(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            computed: true,
            ..Self::new(name, ty, description)
        }
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
}

impl NestedBlock {
    pub fn new(name: &str, nesting: Nesting, block: Block) -> Self {
        NestedBlock {
            name: name.to_string(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }
    pub fn max(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }
}

/// A null value of the schema's shape: every attribute null, collection blocks empty.
pub fn empty_object(block: &Block) -> Value {
    let mut v = BTreeMap::new();
    for a in &block.attributes {
        v.insert(a.name.clone(), Value::Null);
    }
    for b in &block.blocks {
        let empty = match b.nesting {
            Nesting::Single => Value::Null,
            Nesting::List | Nesting::Set => Value::List(vec![]),
            Nesting::Map => Value::Map(BTreeMap::new()),
        };
        v.insert(b.name.clone(), empty);
    }
    Value::Map(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_type_covers_attributes_and_blocks() {
        let s = Schema::new("x")
            .attr(Attribute::required("image", Type::String, "i"))
            .block(NestedBlock::new(
                "auth",
                Nesting::List,
                Block::new("a").attr(Attribute::optional("u", Type::String, "u")),
            ))
            .block(NestedBlock::new("aws", Nesting::Single, Block::new("w")).max(1));
        let want = Type::object([
            ("image", Type::String),
            ("auth", Type::list(Type::object([("u", Type::String)]))),
            ("aws", Type::object(Vec::<(String, Type)>::new())),
        ]);
        assert_eq!(s.ty(), want);
        let empty = empty_object(&s.block);
        assert_eq!(empty.get("auth"), &Value::List(vec![]));
        assert_eq!(empty.get("aws"), &Value::Null);
    }
}
