//! The provider-level RPCs: validating the provider block, resource and
//! data-source configurations, configuring the provider, and reading data
//! sources. Kept apart from `server.rs`, whose trait impl only dispatches.

use super::convert::{decode, encode};
use super::proto as pb;
use super::server::{diags, guard, timed, ProviderService, Res};
use crate::diag::Diagnostics;
use crate::provider::{config, ProviderData};
use tonic::{Request, Response};

impl ProviderService {
    pub(super) async fn rpc_validate_provider_config(
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

    pub(super) async fn rpc_validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Res<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        self.write_only.note(req.client_capabilities.as_ref());
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

    pub(super) async fn rpc_validate_data_resource_config(
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

    pub(super) async fn rpc_configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Res<pb::configure_provider::Response> {
        let req = req.into_inner();
        tracing::debug!(terraform_version = %req.terraform_version, "configuring provider");
        self.write_only.note(req.client_capabilities.as_ref());
        self.write_only.note_version(&req.terraform_version);
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
                self.set_data(data);
                Diagnostics::new()
            }
            Err(d) => d,
        };
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags(d),
        }))
    }

    pub(super) async fn rpc_read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Res<pb::read_data_source::Response> {
        let req = req.into_inner();
        let out = timed("read_data_source", async {
            let ds = self.data_source(&req.type_name)?;
            let ty = ds.schema().ty();
            let cfg = decode(req.config.as_ref(), &ty, "data source configuration")?;
            let ctx = self.ctx();
            let v = guard(ds.read(&ctx, &cfg), |d| Err(d.into())).await?;
            Ok::<_, Diagnostics>(encode(&v, &ty, "data source result")?)
        })
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
}
