//! The traits every resource and data source implements. The protocol layer
//! decodes requests into these plain types and never calls a resource with a
//! value that does not fit its schema.

use crate::diag::{Diagnostic, Diagnostics};
use crate::provider::ProviderData;
use crate::schema::Schema;
use crate::value::{AttrPath, Value};
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What an operation may use: the configured provider (None before
/// ConfigureProvider) and the token StopProvider cancels.
#[derive(Clone)]
pub struct Ctx {
    pub data: Option<Arc<ProviderData>>,
    pub cancel: CancellationToken,
}

impl Ctx {
    /// The configured provider. Refused while part of its configuration is
    /// unknown: a password not known yet must not become an empty one.
    pub fn provider(&self) -> Result<&ProviderData, Diagnostic> {
        let data = self.data.as_deref().ok_or_else(|| {
            Diagnostic::error(
                "Provider Not Configured",
                "The stevedore provider was used before Terraform configured it. If its configuration depends on \
                 values known only after apply, make those values known at plan time.",
            )
        })?;
        if !data.unknown.is_empty() {
            return Err(Diagnostic::error(
                "Provider Configuration Not Known Yet",
                format!(
                    "The provider block's {} will be known only after apply (it depends on \
                     resources not created yet), and stevedore does not talk to registries, the \
                     Docker daemon or AWS with part of its configuration missing. Apply those \
                     resources first (terraform apply -target=...), or set these values from \
                     variables known at plan time.",
                    data.unknown.join(", ")
                ),
            ));
        }
        Ok(data)
    }

    /// Whether the provider block still holds values Terraform does not know.
    pub fn config_not_known_yet(&self) -> bool {
        self.data.as_deref().is_some_and(|d| !d.unknown.is_empty())
    }
}

#[async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    /// Static checks of the configuration; unknown values must be tolerated.
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    /// Returns the full state object (every computed attribute known), or diagnostics.
    async fn read(&self, ctx: &Ctx, config: &Value) -> Result<Value, Diagnostics>;
}

pub struct PlanRequest {
    pub prior: Value,
    pub proposed: Value,
    pub config: Value,
    pub prior_private: Vec<u8>,
    /// Terraform stores no value of write-only attributes (1.11 and later):
    /// plan them null.
    pub write_only_allowed: bool,
}

#[derive(Default)]
pub struct PlanResponse {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
    pub planned_private: Vec<u8>,
    pub diags: Diagnostics,
}

pub struct ApplyRequest {
    pub prior: Value,
    pub planned: Value,
    pub config: Value,
    pub planned_private: Vec<u8>,
}

pub struct ApplyResponse {
    /// What now exists: on failure, the prior state (or what was made before failing).
    pub new_state: Value,
    pub private: Vec<u8>,
    pub diags: Diagnostics,
}

pub struct ReadResponse {
    /// `Value::Null` when the remote object is gone.
    pub new_state: Value,
    pub private: Vec<u8>,
    pub diags: Diagnostics,
}

#[async_trait]
pub trait Resource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }
    /// Plans a create or update (destroys never reach here).
    async fn plan(&self, ctx: &Ctx, req: PlanRequest) -> PlanResponse;
    /// Creates or updates.
    async fn apply(&self, ctx: &Ctx, req: ApplyRequest) -> ApplyResponse;
    async fn read(&self, ctx: &Ctx, state: Value, private: Vec<u8>) -> ReadResponse;
    /// Destroys; `private` is what the last apply or refresh stored.
    async fn delete(&self, ctx: &Ctx, prior: Value, private: &[u8]) -> Diagnostics;
    async fn import(&self, _ctx: &Ctx, _id: &str) -> Result<Value, Diagnostics> {
        Err(Diagnostic::error(
            "Import Not Supported",
            format!(
                "{} cannot be imported; declare it and apply instead.",
                self.type_name()
            ),
        )
        .into())
    }
    /// Turns stored JSON state into the current schema's value.
    fn upgrade_state(&self, _version: i64, raw: &serde_json::Value) -> Result<Value, Diagnostics> {
        crate::value::from_json(raw, &self.schema().ty()).map_err(|e| {
            Diagnostic::error(
                "State Upgrade Failed",
                format!(
                    "The stored state of {} does not fit its schema: {e}",
                    self.type_name()
                ),
            )
            .into()
        })
    }
}
