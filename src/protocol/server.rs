//! tfplugin6.Provider: one short function per RPC, each `from-proto →
//! domain → to-proto`. Errors go back as diagnostics inside the response; a
//! gRPC status only where the protocol prescribes one.

use super::convert;
use super::proto as pb;
use super::unsupported as un;
use crate::diag::{Diagnostic, Diagnostics};
use crate::provider::{config, ProviderData};
use crate::resource::{Ctx, DataSource, Resource};
use crate::resources::Provider;
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
    /// Whether Terraform takes write-only attributes (1.11+).
    pub(super) write_only: super::write_only::WriteOnlyClient,
}

impl ProviderService {
    pub fn new(provider: Provider) -> Self {
        ProviderService {
            provider,
            data: RwLock::new(None),
            stop: Mutex::new(CancellationToken::new()),
            write_only: Default::default(),
        }
    }

    pub(super) fn ctx(&self) -> Ctx {
        let data = self.data.read().map(|d| d.clone()).unwrap_or(None);
        let cancel = self.stop.lock().map(|t| t.clone()).unwrap_or_default();
        Ctx { data, cancel }
    }

    /// What ConfigureProvider made, for every later RPC.
    pub(super) fn set_data(&self, data: ProviderData) {
        if let Ok(mut slot) = self.data.write() {
            *slot = Some(Arc::new(data));
        }
    }

    /// Drops what ConfigureProvider made (daemons and their tunnels) once no
    /// request holds it any more.
    pub(super) fn forget_configuration(&self) {
        if let Ok(mut slot) = self.data.write() {
            *slot = None;
        }
    }

    pub(super) fn resource(&self, name: &str) -> Result<Arc<dyn Resource>, Diagnostic> {
        self.provider
            .resources
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_type("resource", name))
    }

    pub(super) fn data_source(&self, name: &str) -> Result<Arc<dyn DataSource>, Diagnostic> {
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

/// An RPC for a feature stevedore does not offer, answered with the
/// diagnostic that says so (see `unsupported`) and defaults elsewhere.
macro_rules! refuse {
    ($method:ident, $module:ident, |$req:ident| $diagnostic:expr) => {
        // The signature `#[tonic::async_trait]` gives the trait's methods (the
        // attribute does not see into macros); nothing here waits.
        fn $method<'life0, 'async_trait>(
            &'life0 self,
            req: Request<pb::$module::Request>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Res<pb::$module::Response>> + Send + 'async_trait>,
        >
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            let $req = req.into_inner();
            #[allow(clippy::needless_update)]
            let response = pb::$module::Response {
                diagnostics: diags($diagnostic),
                ..Default::default()
            };
            Box::pin(std::future::ready(Ok(Response::new(response))))
        }
    };
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
        self.rpc_validate_provider_config(req).await
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Res<pb::validate_resource_config::Response> {
        self.rpc_validate_resource_config(req).await
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Res<pb::validate_data_resource_config::Response> {
        self.rpc_validate_data_resource_config(req).await
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Res<pb::upgrade_resource_state::Response> {
        timed(
            "upgrade_resource_state",
            self.rpc_upgrade_resource_state(req),
        )
        .await
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

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Res<pb::configure_provider::Response> {
        self.rpc_configure_provider(req).await
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Res<pb::read_resource::Response> {
        timed("read_resource", self.rpc_read_resource(req)).await
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Res<pb::plan_resource_change::Response> {
        timed("plan_resource_change", self.rpc_plan_resource_change(req)).await
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

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Res<pb::read_data_source::Response> {
        self.rpc_read_data_source(req).await
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

    refuse!(
        upgrade_resource_identity,
        upgrade_resource_identity,
        |_req| un::identity()
    );
    refuse!(move_resource_state, move_resource_state, |_req| {
        un::move_state()
    });
    refuse!(generate_resource_config, generate_resource_config, |_req| {
        un::generate_config()
    });
    refuse!(
        validate_ephemeral_resource_config,
        validate_ephemeral_resource_config,
        |req| un::ephemeral(&req.type_name)
    );
    refuse!(open_ephemeral_resource, open_ephemeral_resource, |req| {
        un::ephemeral(&req.type_name)
    });
    refuse!(renew_ephemeral_resource, renew_ephemeral_resource, |req| {
        un::ephemeral(&req.type_name)
    });
    refuse!(close_ephemeral_resource, close_ephemeral_resource, |req| {
        un::ephemeral(&req.type_name)
    });
    refuse!(
        validate_list_resource_config,
        validate_list_resource_config,
        |req| un::list(&req.type_name)
    );
    refuse!(validate_state_store_config, validate_state_store, |_req| {
        un::state_store()
    });
    refuse!(configure_state_store, configure_state_store, |_req| {
        un::state_store()
    });
    refuse!(get_states, get_states, |_req| un::state_store());
    refuse!(delete_state, delete_state, |_req| un::state_store());
    refuse!(plan_action, plan_action, |_req| un::action());
    refuse!(validate_action_config, validate_action_config, |_req| {
        un::action()
    });

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

/// Runs one RPC, logging how long the provider spent on it at `debug`
/// (`rpc` and `micros`), so plan cost can be split between Terraform and us.
pub(super) async fn timed<T>(rpc: &'static str, work: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = work.await;
    tracing::debug!(
        rpc,
        micros = started.elapsed().as_micros() as u64,
        "rpc served"
    );
    out
}
