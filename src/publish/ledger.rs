//! What a publish has written to the registry so far, noted as it happens:
//! which tags now serve the new image, which may (a write whose answer never
//! came: cancelled, or the connection broke), and which manifests the push
//! created (the repository did not hold them before). A failure then says
//! truthfully which tags moved, and destroy later deletes only what this
//! publish created.

use std::sync::Mutex;

use crate::oci::Digest;

/// Shared by the platforms publishing at once and the tag step.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<Written>);

/// A copy of the ledger at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Tags that serve the new image because this publish wrote them.
    pub moved: Vec<String>,
    /// Tags written without an answer: they may serve the new image.
    pub uncertain: Vec<String>,
    /// Manifests the repository did not hold before this publish pushed them.
    pub created: Vec<Digest>,
}

impl Written {
    /// True when no tag may have changed.
    pub fn no_tag_changed(&self) -> bool {
        self.moved.is_empty() && self.uncertain.is_empty()
    }
}

impl Ledger {
    fn with<T>(&self, f: impl FnOnce(&mut Written) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A write of `tag` is about to go out.
    pub fn writing(&self, tag: &str) {
        self.with(|w| {
            if !w.uncertain.iter().any(|t| t == tag) {
                w.uncertain.push(tag.to_string());
            }
        });
    }

    /// The registry took the write of `tag`.
    pub fn moved(&self, tag: &str) {
        self.with(|w| {
            w.uncertain.retain(|t| t != tag);
            if !w.moved.iter().any(|t| t == tag) {
                w.moved.push(tag.to_string());
            }
        });
    }

    /// The registry refused the write of `tag`: it serves what it did before.
    pub fn refused(&self, tag: &str) {
        self.with(|w| w.uncertain.retain(|t| t != tag));
    }

    /// This publish pushed `digest` and the repository did not hold it before.
    pub fn created(&self, digest: &Digest) {
        self.with(|w| {
            if !w.created.contains(digest) {
                w.created.push(digest.clone());
            }
        });
    }

    pub fn written(&self) -> Written {
        self.with(|w| w.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_is_uncertain_until_answered() {
        let ledger = Ledger::default();
        ledger.writing("latest");
        ledger.writing("v1");
        ledger.writing("v2");
        assert_eq!(ledger.written().uncertain, ["latest", "v1", "v2"]);
        ledger.moved("latest");
        ledger.refused("v1");
        let w = ledger.written();
        assert_eq!(w.moved, ["latest"]);
        assert_eq!(w.uncertain, ["v2"]);
        assert!(!w.no_tag_changed());
        ledger.refused("v2");
        ledger.created(&Digest::sha256_of(b"m"));
        ledger.created(&Digest::sha256_of(b"m"));
        assert_eq!(ledger.written().created.len(), 1);
        assert!(Ledger::default().written().no_tag_changed());
    }
}
