//! Answers for the protocol features stevedore does not offer (ephemeral
//! resources, list, state stores, actions, moves, identities): an error
//! diagnostic that says so, never a crash or a silent success.

use crate::diag::Diagnostic;
use std::pin::Pin;
use tonic::Status;

pub type OneShot<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A server stream carrying exactly one message.
pub fn one_shot<T: Send + 'static>(item: T) -> OneShot<T> {
    Box::pin(futures::stream::iter([Ok(item)]))
}

fn none(what: &str, detail: &str) -> Diagnostic {
    Diagnostic::error(
        format!("{what} Not Supported"),
        format!("The stevedore provider has no {detail}."),
    )
}

pub fn ephemeral(type_name: &str) -> Diagnostic {
    none(
        "Ephemeral Resource",
        &format!("ephemeral resource type {type_name:?}"),
    )
}
pub fn list(type_name: &str) -> Diagnostic {
    none(
        "List Resource",
        &format!("list resource type {type_name:?}"),
    )
}
pub fn state_store() -> Diagnostic {
    none(
        "State Store",
        "state store; configure a Terraform backend instead",
    )
}
pub fn action() -> Diagnostic {
    none("Action", "actions")
}
pub fn identity() -> Diagnostic {
    none("Resource Identity", "resource identity schemas")
}
pub fn move_state() -> Diagnostic {
    none(
        "Move",
        "way to move state from another resource type; import the object instead",
    )
}
pub fn generate_config() -> Diagnostic {
    none(
        "Config Generation",
        "config generation; write the resource block by hand",
    )
}
