//! Resource `stevedore_ecs_redeploy`: force a new ECS deployment when the
//! digest (or a trigger) changes and wait until the new tasks run.

use super::common;
use crate::diag::Diagnostics;
use crate::resource::{ApplyRequest, ApplyResponse, Ctx, PlanRequest, PlanResponse, ReadResponse, Resource};
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::value::{Type, Value};
use async_trait::async_trait;

pub struct EcsRedeploy;

pub const TYPE_NAME: &str = "stevedore_ecs_redeploy";

fn defaults() -> Vec<(&'static str, Value)> {
    vec![("wait_for_steady_state", Value::Bool(true)), ("verify_images", Value::Bool(true))]
}

#[async_trait]
impl Resource for EcsRedeploy {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        let s = Type::String;
        let timeouts = Block::new("How long to wait for the rollout.")
            .attr(Attribute::optional("create", s.clone(), "Duration such as `15m` (default `15m`)."))
            .attr(Attribute::optional("update", s.clone(), "Duration such as `15m` (default `15m`)."));
        Schema::new("Forces a new deployment of an ECS service when `digest` or `triggers` change, waits until the new tasks run, and fails with the stopped tasks' reasons when the rollout fails.")
            .attr(Attribute::required("cluster", s.clone(), "Cluster name or ARN."))
            .attr(Attribute::required("service", s.clone(), "Service name or ARN."))
            .attr(Attribute::optional("digest", s.clone(), "Image digest; a change forces a new deployment."))
            .attr(Attribute::optional("triggers", Type::map(s.clone()), "Arbitrary values; any change forces a new deployment."))
            .attr(Attribute::optional_computed("wait_for_steady_state", Type::Bool, "Wait until the new deployment completes. Default `true`."))
            .attr(Attribute::optional_computed("verify_images", Type::Bool, "Check the task definition's images against its runtime platform first. Default `true`."))
            .attr(Attribute::computed("id", s.clone(), "`cluster/service`."))
            .attr(Attribute::computed("deployment_id", s.clone(), "Id of the deployment this resource started."))
            .attr(Attribute::computed("rollout_state", s.clone(), "Rollout state of that deployment when apply returned."))
            .attr(Attribute::computed("task_definition_arn", s.clone(), "Task definition of that deployment."))
            .attr(Attribute::computed("running_count", Type::Number, "Running tasks of that deployment."))
            .attr(Attribute::computed("running_image_digests", Type::list(s), "Image digests reported by the service's running tasks after the rollout."))
            .block(NestedBlock::new("timeouts", Nesting::Single, timeouts).max(1))
    }

    async fn plan(&self, _ctx: &Ctx, req: PlanRequest) -> PlanResponse {
        let mut planned = req.proposed.clone();
        common::apply_defaults(&mut planned, &req.config, &defaults());
        common::unknown_computed(&self.schema(), &mut planned);
        PlanResponse { planned, planned_private: req.prior_private, ..Default::default() }
    }

    async fn apply(&self, _ctx: &Ctx, req: ApplyRequest) -> ApplyResponse {
        ApplyResponse { new_state: req.prior, private: vec![], diags: common::not_available_yet(TYPE_NAME, "ECS redeploy lands with its own issue").into() }
    }

    async fn read(&self, _ctx: &Ctx, state: Value, private: Vec<u8>) -> ReadResponse {
        ReadResponse { new_state: state, private, diags: Diagnostics::new() }
    }

    async fn delete(&self, _ctx: &Ctx, _prior: Value) -> Diagnostics {
        // NO-OP: the service is left running; removal from state is all delete means.
        Diagnostics::new()
    }
}
