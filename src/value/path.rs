//! Attribute paths: where in a value a diagnostic or decode error points.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AttrPath(Vec<Step>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// An object attribute (or nested block) by name.
    Attr(String),
    /// A map element by key.
    Key(String),
    /// A list or tuple element by position.
    Index(i64),
}

impl AttrPath {
    pub fn root() -> Self {
        AttrPath(Vec::new())
    }
    pub fn attr(name: &str) -> Self {
        AttrPath(vec![Step::Attr(name.to_string())])
    }
    pub fn child(&self, step: Step) -> Self {
        let mut steps = self.0.clone();
        steps.push(step);
        AttrPath(steps)
    }
    pub fn then_attr(&self, name: &str) -> Self {
        self.child(Step::Attr(name.to_string()))
    }
    pub fn then_key(&self, key: &str) -> Self {
        self.child(Step::Key(key.to_string()))
    }
    pub fn then_index(&self, i: usize) -> Self {
        self.child(Step::Index(i as i64))
    }
    pub fn steps(&self) -> &[Step] {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Renders as Terraform prints addresses: `registry_auth[0].password`, `labels["team"]`.
impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(n) if i == 0 => write!(f, "{n}")?,
                Step::Attr(n) => write!(f, ".{n}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}
