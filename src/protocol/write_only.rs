//! Write-only attributes (`secrets`) and the Terraform that runs us.
//!
//! Terraform 1.11 and later store no value of a write-only attribute and
//! reject any response that returns one from UpgradeResourceState,
//! ReadResource or ImportResourceState ("Provider returned a value for the
//! write-only attribute"), also for a state an older Terraform wrote with
//! the value in it. Older Terraform knows nothing of write-only: it keeps the
//! value in state, and a read that nulled it would plan a change on every
//! run. So the responses null these attributes only for a client that can
//! take it: one that said so in a request's `ClientCapabilities`
//! (`write_only_attributes_allowed`, tfplugin6.8: ValidateResourceConfig,
//! PlanResourceChange, and the shared message on ConfigureProvider and
//! ReadResource), or whose `terraform_version` in ConfigureProvider is 1.11
//! or later. ConfigureProvider comes before any resource RPC of a plan or
//! apply walk (a resource's node depends on its provider's), so the upgrade
//! and the read of the first resource already know.

use std::sync::atomic::{AtomicBool, Ordering};

use super::proto as pb;
use crate::schema::Schema;
use crate::value::Value;

/// Whether this provider process serves a Terraform that takes write-only attributes.
#[derive(Debug, Default)]
pub(super) struct WriteOnlyClient(AtomicBool);

impl WriteOnlyClient {
    /// Notes the capabilities a request carried.
    pub(super) fn note(&self, caps: Option<&pb::ClientCapabilities>) {
        if caps.is_some_and(|c| c.write_only_attributes_allowed) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    /// Notes the version ConfigureProvider names.
    pub(super) fn note_version(&self, terraform_version: &str) {
        if supports_write_only(terraform_version) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    pub(super) fn allowed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `state` with every write-only attribute of `schema` null, when the
    /// client takes write-only attributes; else unchanged.
    pub(super) fn strip(&self, schema: &Schema, state: Value) -> Value {
        if !self.allowed() || state.is_null() || state.is_unknown() {
            return state;
        }
        let mut state = state;
        for a in schema.block.attributes.iter().filter(|a| a.write_only) {
            state.set(&a.name, Value::Null);
        }
        state
    }
}

/// True for Terraform (or OpenTofu) 1.11 and later: `"1.11.0"`, `"1.14.2-rc1"`.
fn supports_write_only(version: &str) -> bool {
    let mut parts = version.trim().trim_start_matches('v').split(['.', '-']);
    let major = parts.next().and_then(|p| p.parse::<u64>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u64>().ok());
    matches!((major, minor), (Some(m), _) if m > 1)
        || matches!((major, minor), (Some(1), Some(n)) if n >= 11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_1_11_take_write_only_attributes() {
        for yes in ["1.11.0", "1.11.0-beta1", "1.14.2", "v1.12.1", "2.0.0"] {
            assert!(supports_write_only(yes), "{yes}");
        }
        for no in ["1.0.3", "1.10.5", "1.5.7", "0.15.5", "", "garbage"] {
            assert!(!supports_write_only(no), "{no}");
        }
    }

    #[test]
    fn a_capability_or_a_version_switches_it_on_for_good() {
        let client = WriteOnlyClient::default();
        client.note(None);
        client.note_version("1.0.3");
        client.note(Some(&pb::ClientCapabilities::default()));
        assert!(!client.allowed());
        client.note(Some(&pb::ClientCapabilities {
            write_only_attributes_allowed: true,
            ..Default::default()
        }));
        assert!(client.allowed());
    }
}
