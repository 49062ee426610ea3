//! Diagnostics: how every problem reaches the user. Summary names the
//! operation ("Image Push Failed"), detail says what was tried, the cause and
//! what to do, and `attribute` points at the config value to blame.

use crate::value::AttrPath;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub attribute: Option<AttrPath>,
}

impl Diagnostic {
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            attribute: None,
        }
    }
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            summary: summary.into(),
            detail: detail.into(),
            attribute: None,
        }
    }
    pub fn at(mut self, path: AttrPath) -> Self {
        self.attribute = Some(path);
        self
    }
    /// An error about one top-level attribute.
    pub fn attr_error(attr: &str, summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::error(summary, detail).at(AttrPath::attr(attr))
    }
    /// A provider bug: never the user's fault, said plainly.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self::error(
            "Provider Internal Error",
            format!(
                "{what}\n\nThis is a bug in the stevedore provider; please report it with the \
                 configuration that caused it."
            ),
        )
    }
}

/// A list of diagnostics; `has_errors` decides whether an operation failed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Self {
        Diagnostics(v)
    }
}

/// The error and its causes on one line: the
/// libraries' outer messages (reqwest's "error sending request", hyper's
/// "client error (Connect)") say little; the causes say what happened.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
