//! The managed-resource RPCs (upgrade, read, plan, apply, import): decode
//! with the resource's schema, call it, encode its answer. Kept apart from
//! `server.rs` so each file stays readable; the tfplugin6 trait delegates here.

use super::convert::{self, decode, encode};
use super::proto as pb;
use super::server::{diags, guard, ProviderService, Res};
use crate::diag::{Diagnostic, Diagnostics};
use crate::resource::{ApplyRequest, PlanRequest};
use crate::value::Value;
use tonic::{Request, Response};

impl ProviderService {
    pub(super) async fn rpc_upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Res<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        let out = (|| -> Result<pb::DynamicValue, Diagnostics> {
            let r = self.resource(&req.type_name)?;
            let schema = r.schema();
            if req.version > schema.version {
                return Err(Diagnostic::error(
                    "State From A Newer Provider",
                    format!(
                        "The state of this {} was written by a newer stevedore (schema version {} \
                         > {}); upgrade the provider.",
                        req.type_name, req.version, schema.version
                    ),
                )
                .into());
            }
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() {
                return Err(Diagnostic::error(
                    "Legacy State Not Supported",
                    "This state is in the pre-0.12 flatmap format, which stevedore never wrote; \
                     remove the resource from state and import it again.",
                )
                .into());
            }
            let json: serde_json::Value = serde_json::from_slice(&raw.json).map_err(|e| {
                Diagnostic::error(
                    "Corrupt State",
                    format!("The stored state is not valid JSON: {e}"),
                )
            })?;
            let v = self
                .write_only
                .strip(&schema, r.upgrade_state(req.version, &json)?);
            Ok(encode(&v, &schema.ty(), "upgraded state")?)
        })();
        let (upgraded_state, d) = match out {
            Ok(dv) => (Some(dv), Diagnostics::new()),
            Err(d) => (None, d),
        };
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diags(d),
        }))
    }

    pub(super) async fn rpc_read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Res<pb::read_resource::Response> {
        let req = req.into_inner();
        self.write_only.note(req.client_capabilities.as_ref());
        let r = match self.resource(&req.type_name) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Response::new(pb::read_resource::Response {
                    new_state: req.current_state,
                    diagnostics: diags(e),
                    ..Default::default()
                }))
            }
        };
        let schema = r.schema();
        let ty = schema.ty();
        let state = match decode(req.current_state.as_ref(), &ty, "current state") {
            Ok(s) => s,
            Err(e) => {
                return Ok(Response::new(pb::read_resource::Response {
                    new_state: req.current_state,
                    diagnostics: diags(e),
                    ..Default::default()
                }))
            }
        };
        let ctx = self.ctx();
        let fallback = state.clone();
        let out = guard(r.read(&ctx, state, req.private.clone()), |d| {
            crate::resource::ReadResponse {
                new_state: fallback,
                private: req.private.clone(),
                diags: d.into(),
            }
        })
        .await;
        let mut d = out.diags;
        let new_state = self.write_only.strip(&schema, out.new_state);
        let new_state = encode(&new_state, &ty, "refreshed state")
            .map_err(|e| d.push(e))
            .ok();
        Ok(Response::new(pb::read_resource::Response {
            new_state: new_state.or(req.current_state),
            diagnostics: diags(d),
            private: out.private,
            ..Default::default()
        }))
    }

    pub(super) async fn rpc_plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Res<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        self.write_only.note(req.client_capabilities.as_ref());
        let fail = |d: Diagnostics| {
            Ok(Response::new(pb::plan_resource_change::Response {
                diagnostics: diags(d),
                ..Default::default()
            }))
        };
        let r = match self.resource(&req.type_name) {
            Ok(r) => r,
            Err(e) => return fail(e.into()),
        };
        let ty = r.schema().ty();
        let decoded = (|| -> Result<_, Diagnostic> {
            Ok((
                decode(req.prior_state.as_ref(), &ty, "prior state")?,
                decode(req.proposed_new_state.as_ref(), &ty, "proposed state")?,
                decode(req.config.as_ref(), &ty, "configuration")?,
            ))
        })();
        let (prior, proposed, config) = match decoded {
            Ok(v) => v,
            Err(e) => return fail(e.into()),
        };
        if proposed.is_null() {
            // Destroy plan (plan_destroy capability): nothing to compute.
            let planned_state = encode(&Value::Null, &ty, "planned state").ok();
            return Ok(Response::new(pb::plan_resource_change::Response {
                planned_state,
                planned_private: req.prior_private,
                ..Default::default()
            }));
        }
        let ctx = self.ctx();
        let out = guard(
            r.plan(
                &ctx,
                PlanRequest {
                    prior,
                    proposed,
                    config,
                    prior_private: req.prior_private,
                    // Per request, as Terraform says it for this plan.
                    write_only_allowed: req
                        .client_capabilities
                        .is_some_and(|c| c.write_only_attributes_allowed),
                },
            ),
            |d| crate::resource::PlanResponse {
                diags: d.into(),
                ..Default::default()
            },
        )
        .await;
        let mut d = out.diags;
        let planned_state = if d.has_errors() {
            None
        } else {
            encode(&out.planned, &ty, "planned state")
                .map_err(|e| d.push(e))
                .ok()
        };
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace: out.requires_replace.iter().map(convert::path).collect(),
            planned_private: out.planned_private,
            diagnostics: diags(d),
            ..Default::default()
        }))
    }

    pub(super) async fn rpc_apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Res<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        let fail = |state: Option<pb::DynamicValue>, d: Diagnostics| {
            Ok(Response::new(pb::apply_resource_change::Response {
                new_state: state,
                diagnostics: diags(d),
                ..Default::default()
            }))
        };
        let r = match self.resource(&req.type_name) {
            Ok(r) => r,
            Err(e) => return fail(req.prior_state, e.into()),
        };
        let ty = r.schema().ty();
        let decoded = (|| -> Result<_, Diagnostic> {
            Ok((
                decode(req.prior_state.as_ref(), &ty, "prior state")?,
                decode(req.planned_state.as_ref(), &ty, "planned state")?,
                decode(req.config.as_ref(), &ty, "configuration")?,
            ))
        })();
        let (prior, planned, config) = match decoded {
            Ok(v) => v,
            Err(e) => return fail(req.prior_state, e.into()),
        };
        let ctx = self.ctx();
        if planned.is_null() {
            // NOTE: on a destroy Terraform sends the prior private state as
            // planned_private: its destroy plan short-circuits without asking us
            // and forwards prior_private (terraform `internal/terraform/
            // node_resource_abstract_instance.go`, planDestroy).
            let private = req.planned_private.clone();
            let d = guard(r.delete(&ctx, prior.clone(), &private), Diagnostics::from).await;
            // A failed delete keeps the object, and its private state, in
            // state: nothing the user had is lost.
            let (state, private) = if d.has_errors() {
                (prior, private)
            } else {
                (Value::Null, Vec::new())
            };
            let new_state = encode(&state, &ty, "state").ok();
            return Ok(Response::new(pb::apply_resource_change::Response {
                new_state,
                private,
                diagnostics: diags(d),
                ..Default::default()
            }));
        }
        let fallback = prior.clone();
        let out = guard(
            r.apply(
                &ctx,
                ApplyRequest {
                    prior,
                    planned,
                    config,
                    planned_private: req.planned_private.clone(),
                },
            ),
            |d| crate::resource::ApplyResponse {
                new_state: fallback,
                private: req.planned_private.clone(),
                diags: d.into(),
            },
        )
        .await;
        let mut d = out.diags;
        let new_state = encode(&out.new_state, &ty, "new state")
            .map_err(|e| d.push(e))
            .ok();
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state,
            private: out.private,
            diagnostics: diags(d),
            ..Default::default()
        }))
    }

    pub(super) async fn rpc_import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Res<pb::import_resource_state::Response> {
        let req = req.into_inner();
        let out = async {
            let r = self.resource(&req.type_name)?;
            let ctx = self.ctx();
            let v = guard(r.import(&ctx, &req.id), |d| Err(d.into())).await?;
            let schema = r.schema();
            let v = self.write_only.strip(&schema, v);
            Ok::<_, Diagnostics>(pb::import_resource_state::ImportedResource {
                type_name: req.type_name.clone(),
                state: Some(encode(&v, &schema.ty(), "imported state")?),
                ..Default::default()
            })
        }
        .await;
        let (imported_resources, d) = match out {
            Ok(i) => (vec![i], Diagnostics::new()),
            Err(d) => (vec![], d),
        };
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources,
            diagnostics: diags(d),
            deferred: None,
        }))
    }
}
