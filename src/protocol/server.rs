//! tfplugin6.Provider: one short function per RPC, each `from-proto →
//! domain → to-proto`. Errors go back as diagnostics inside the response; a
//! gRPC status only where the protocol prescribes one.

use super::convert::{self, decode, encode};
use super::proto as pb;
use super::unsupported as un;
use crate::diag::{Diagnostic, Diagnostics};
use crate::provider::{config, Provider, ProviderData};
use crate::resource::{Ctx, DataSource, Resource};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

pub(super) type Res<T> = Result<Response<T>, Status>;

pub struct ProviderService {
    provider: Provider,
    data: RwLock<Option<Arc<ProviderData>>>,
    stop: Mutex<CancellationToken>,
}

impl ProviderService {
    pub fn new(provider: Provider) -> Self {
        ProviderService {
            provider,
            data: RwLock::new(None),
            stop: Mutex::new(CancellationToken::new()),
        }
    }

    pub(super) fn ctx(&self) -> Ctx {
        let data = self.data.read().map(|d| d.clone()).unwrap_or(None);
        let cancel = self.stop.lock().map(|t| t.clone()).unwrap_or_default();
        Ctx { data, cancel }
    }

    pub(super) fn resource(&self, name: &str) -> Result<Arc<dyn Resource>, Diagnostic> {
        self.provider
            .resources
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_type("resource", name))
    }

    fn data_source(&self, name: &str) -> Result<Arc<dyn DataSource>, Diagnostic> {
        self.provider
            .data_sources
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_type("data source", name))
    }

    /// Cancels in-flight work (Ctrl-C); later requests get a fresh token.
    pub fn stop(&self) {
        if let Ok(mut t) = self.stop.lock() {
            t.cancel();
            *t = CancellationToken::new();
        }
    }
}

fn unknown_type(kind: &str, name: &str) -> Diagnostic {
    Diagnostic::error(
        format!("Unknown {kind} type"),
        format!("The stevedore provider has no {kind} type {name:?}. Check the spelling, or upgrade the provider."),
    )
}

/// Runs a handler; a panic becomes an error diagnostic instead of killing the
/// plugin (which Terraform would report as a crash).
pub(super) async fn guard<T>(
    fut: impl std::future::Future<Output = T>,
    on_panic: impl FnOnce(Diagnostic) -> T,
) -> T {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(v) => v,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(panic = %msg, "request handler panicked");
            on_panic(Diagnostic::internal(format!(
                "an operation panicked: {msg}"
            )))
        }
    }
}

pub(super) fn diags(d: impl Into<Diagnostics>) -> Vec<pb::Diagnostic> {
    convert::diagnostics(d.into())
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _: Request<pb::get_metadata::Request>,
    ) -> Res<pb::get_metadata::Response> {
        use pb::get_metadata as m;
        Ok(Response::new(m::Response {
            server_capabilities: Some(capabilities()),
            resources: self
                .provider
                .resources
                .keys()
                .map(|k| m::ResourceMetadata {
                    type_name: k.to_string(),
                })
                .collect(),
            data_sources: self
                .provider
                .data_sources
                .keys()
                .map(|k| m::DataSourceMetadata {
                    type_name: k.to_string(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Res<pb::get_provider_schema::Response> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(convert::schema(&config::schema())),
            resource_schemas: self
                .provider
                .resources
                .iter()
                .map(|(k, r)| (k.to_string(), convert::schema(&r.schema())))
                .collect(),
            data_source_schemas: self
                .provider
                .data_sources
                .iter()
                .map(|(k, d)| (k.to_string(), convert::schema(&d.schema())))
                .collect(),
            server_capabilities: Some(capabilities()),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Res<pb::validate_provider_config::Response> {
        let req = req.into_inner();
        let d = match decode(
            req.config.as_ref(),
            &config::schema().ty(),
            "provider configuration",
        ) {
            Ok(cfg) => config::validate(&cfg),
            Err(e) => e.into(),
        };
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diags(d),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Res<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let d = match self.resource(&req.type_name) {
            Ok(r) => match decode(
                req.config.as_ref(),
                &r.schema().ty(),
                "resource configuration",
            ) {
                Ok(cfg) => r.validate(&cfg),
                Err(e) => e.into(),
            },
            Err(e) => e.into(),
        };
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diags(d),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Res<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let d = match self.data_source(&req.type_name) {
            Ok(ds) => match decode(
                req.config.as_ref(),
                &ds.schema().ty(),
                "data source configuration",
            ) {
                Ok(cfg) => ds.validate(&cfg),
                Err(e) => e.into(),
            },
            Err(e) => e.into(),
        };
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diags(d),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Res<pb::upgrade_resource_state::Response> {
        self.rpc_upgrade_resource_state(req).await
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Res<pb::get_resource_identity_schemas::Response> {
        // Terraform ≥ 1.12 reads Unimplemented as "no identity schemas"; any
        // other answer without schemas would fail schema loading.
        Err(Status::unimplemented(
            "stevedore resources have no identity schemas",
        ))
    }

    async fn upgrade_resource_identity(
        &self,
        _: Request<pb::upgrade_resource_identity::Request>,
    ) -> Res<pb::upgrade_resource_identity::Response> {
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity: None,
            diagnostics: diags(un::identity()),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Res<pb::configure_provider::Response> {
        let req = req.into_inner();
        tracing::debug!(terraform_version = %req.terraform_version, "configuring provider");
        let d = match decode(
            req.config.as_ref(),
            &config::schema().ty(),
            "provider configuration",
        )
        .map_err(Diagnostics::from)
        .and_then(|c| match config::unknown_paths(&c) {
            unknown if unknown.is_empty() => config::parse(&c).map(ProviderData::new),
            // NOTE: Terraform configures the provider with unknown values
            // during plan when its block depends on resources not created
            // yet; nothing may then run with the known part alone.
            unknown => {
                let checked = config::validate(&c);
                if checked.has_errors() {
                    Err(checked)
                } else {
                    Ok(ProviderData::not_known_yet(unknown))
                }
            }
        }) {
            Ok(data) => {
                if let Ok(mut slot) = self.data.write() {
                    *slot = Some(Arc::new(data));
                }
                Diagnostics::new()
            }
            Err(d) => d,
        };
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags(d),
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Res<pb::read_resource::Response> {
        self.rpc_read_resource(req).await
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Res<pb::plan_resource_change::Response> {
        self.rpc_plan_resource_change(req).await
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Res<pb::apply_resource_change::Response> {
        self.rpc_apply_resource_change(req).await
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Res<pb::import_resource_state::Response> {
        self.rpc_import_resource_state(req).await
    }

    async fn move_resource_state(
        &self,
        _: Request<pb::move_resource_state::Request>,
    ) -> Res<pb::move_resource_state::Response> {
        Ok(Response::new(pb::move_resource_state::Response {
            diagnostics: diags(un::move_state()),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Res<pb::read_data_source::Response> {
        let req = req.into_inner();
        let out = async {
            let ds = self.data_source(&req.type_name)?;
            let ty = ds.schema().ty();
            let cfg = decode(req.config.as_ref(), &ty, "data source configuration")?;
            let ctx = self.ctx();
            let v = guard(ds.read(&ctx, &cfg), |d| Err(d.into())).await?;
            Ok::<_, Diagnostics>(encode(&v, &ty, "data source result")?)
        }
        .await;
        let (state, d) = match out {
            Ok(s) => (Some(s), Diagnostics::new()),
            Err(d) => (None, d),
        };
        Ok(Response::new(pb::read_data_source::Response {
            state,
            diagnostics: diags(d),
            deferred: None,
        }))
    }

    async fn generate_resource_config(
        &self,
        _: Request<pb::generate_resource_config::Request>,
    ) -> Res<pb::generate_resource_config::Response> {
        Ok(Response::new(pb::generate_resource_config::Response {
            config: None,
            diagnostics: diags(un::generate_config()),
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Res<pb::validate_ephemeral_resource_config::Response> {
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: diags(un::ephemeral(&req.into_inner().type_name)),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Res<pb::open_ephemeral_resource::Response> {
        Ok(Response::new(pb::open_ephemeral_resource::Response {
            diagnostics: diags(un::ephemeral(&req.into_inner().type_name)),
            ..Default::default()
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Res<pb::renew_ephemeral_resource::Response> {
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: diags(un::ephemeral(&req.into_inner().type_name)),
            ..Default::default()
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Res<pb::close_ephemeral_resource::Response> {
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics: diags(un::ephemeral(&req.into_inner().type_name)),
        }))
    }

    type ListResourceStream = un::OneShot<pb::list_resource::Event>;

    async fn list_resource(
        &self,
        req: Request<pb::list_resource::Request>,
    ) -> Res<Self::ListResourceStream> {
        let event = pb::list_resource::Event {
            diagnostic: diags(un::list(&req.into_inner().type_name)),
            ..Default::default()
        };
        Ok(Response::new(un::one_shot(event)))
    }

    async fn validate_list_resource_config(
        &self,
        req: Request<pb::validate_list_resource_config::Request>,
    ) -> Res<pb::validate_list_resource_config::Response> {
        Ok(Response::new(pb::validate_list_resource_config::Response {
            diagnostics: diags(un::list(&req.into_inner().type_name)),
        }))
    }

    async fn get_functions(
        &self,
        _: Request<pb::get_functions::Request>,
    ) -> Res<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response::default()))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Res<pb::call_function::Response> {
        let name = req.into_inner().name;
        Ok(Response::new(pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!("the stevedore provider defines no function {name:?}"),
                function_argument: None,
            }),
        }))
    }

    async fn validate_state_store_config(
        &self,
        _: Request<pb::validate_state_store::Request>,
    ) -> Res<pb::validate_state_store::Response> {
        Ok(Response::new(pb::validate_state_store::Response {
            diagnostics: diags(un::state_store()),
        }))
    }

    async fn configure_state_store(
        &self,
        _: Request<pb::configure_state_store::Request>,
    ) -> Res<pb::configure_state_store::Response> {
        Ok(Response::new(pb::configure_state_store::Response {
            diagnostics: diags(un::state_store()),
        }))
    }

    type ReadStateBytesStream = un::OneShot<pb::read_state_bytes::Response>;

    async fn read_state_bytes(
        &self,
        _: Request<pb::read_state_bytes::Request>,
    ) -> Res<Self::ReadStateBytesStream> {
        Ok(Response::new(un::one_shot(
            pb::read_state_bytes::Response {
                diagnostics: diags(un::state_store()),
                ..Default::default()
            },
        )))
    }

    async fn write_state_bytes(
        &self,
        _: Request<tonic::Streaming<pb::write_state_bytes::RequestChunk>>,
    ) -> Res<pb::write_state_bytes::Response> {
        Ok(Response::new(pb::write_state_bytes::Response {
            diagnostics: diags(un::state_store()),
        }))
    }

    async fn get_states(
        &self,
        _: Request<pb::get_states::Request>,
    ) -> Res<pb::get_states::Response> {
        Ok(Response::new(pb::get_states::Response {
            state_id: vec![],
            diagnostics: diags(un::state_store()),
        }))
    }

    async fn delete_state(
        &self,
        _: Request<pb::delete_state::Request>,
    ) -> Res<pb::delete_state::Response> {
        Ok(Response::new(pb::delete_state::Response {
            diagnostics: diags(un::state_store()),
        }))
    }

    async fn plan_action(
        &self,
        _: Request<pb::plan_action::Request>,
    ) -> Res<pb::plan_action::Response> {
        Ok(Response::new(pb::plan_action::Response {
            diagnostics: diags(un::action()),
            deferred: None,
        }))
    }

    type InvokeActionStream = un::OneShot<pb::invoke_action::Event>;

    async fn invoke_action(
        &self,
        _: Request<pb::invoke_action::Request>,
    ) -> Res<Self::InvokeActionStream> {
        use pb::invoke_action::event::{Completed, Type};
        let event = pb::invoke_action::Event {
            r#type: Some(Type::Completed(Completed {
                diagnostics: diags(un::action()),
            })),
        };
        Ok(Response::new(un::one_shot(event)))
    }

    async fn validate_action_config(
        &self,
        _: Request<pb::validate_action_config::Request>,
    ) -> Res<pb::validate_action_config::Response> {
        Ok(Response::new(pb::validate_action_config::Response {
            diagnostics: diags(un::action()),
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> Res<pb::stop_provider::Response> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.stop();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        // Destroys are planned by us too (TF ≥ 1.3), so a destroy plan can warn.
        plan_destroy: true,
        // Every process answers GetProviderSchema itself; no cache needed.
        get_provider_schema_optional: false,
        move_resource_state: false,
        generate_resource_config: false,
    }
}
