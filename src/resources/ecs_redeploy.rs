//! Resource `stevedore_ecs_redeploy`: force a new ECS deployment when the
//! digest (or a trigger) changes and wait until the new tasks run.
//!
//! The state records the deployment this resource started, not the service's
//! current one: refresh only checks the service still exists, so someone
//! else's deployment is not drift (it would otherwise show on every plan).

mod apply;
mod deploy;
mod duration;
mod follow;
mod names;
mod plan;
mod prove;
pub mod provenance;
mod verify;

use crate::diag::{Diagnostic, Diagnostics};
use crate::ecs::{self, EcsError, PollPolicy};
use crate::resource::{
    ApplyRequest, ApplyResponse, Ctx, PlanRequest, PlanResponse, ReadResponse, Resource,
};
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::value::{AttrPath, Type, Value};
use async_trait::async_trait;
use std::time::Duration;

pub struct EcsRedeploy;

impl EcsRedeploy {
    /// Apply with another polling policy: tests follow rollouts in milliseconds.
    pub async fn apply_polling(
        &self,
        ctx: &Ctx,
        req: ApplyRequest,
        poll: PollPolicy,
    ) -> ApplyResponse {
        apply::apply(ctx, req, poll).await
    }
}

pub const TYPE_NAME: &str = "stevedore_ecs_redeploy";

crate::model! {
    /// The resource's configuration and state.
    pub struct RedeployModel, names attr {
        cluster,
        service,
        digest,
        triggers,
        wait_for_steady_state,
        verify_images,
        timeouts,
        require_provenance,
        id,
        deployment_id,
        rollout_state,
        task_definition_arn,
        running_count,
        running_image_digests,
    }
}

crate::model! {
    /// The `require_provenance` block.
    pub struct ProvenanceModel, names provenance_attr {
        public_key_file,
        builder_id,
    }
}

crate::model! {
    /// The `timeouts` block.
    pub struct TimeoutsModel, names timeouts_attr {
        create,
        update,
    }
}

/// The resource's documentation (Markdown). GOTCHA: the docs generator takes
/// everything up to the first ". " as the front-matter summary, newlines
/// included, so the first sentence must end with ". " inside its paragraph.
/// The file ends without a newline: the description is exactly its bytes.
const DESCRIPTION: &str = include_str!("ecs_redeploy/description.md");

/// What the `timeouts` attributes accept (see `duration`).
const TIMEOUT_DOC: &str = "Duration in Go's syntax, such as `15m`, `1h30m` or `90s` (default \
                           `15m`); at most `24h`, not negative, no spaces.";

/// How long to wait for a rollout when `timeouts` does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[async_trait]
impl Resource for EcsRedeploy {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        let s = Type::String;
        let timeouts = Block::new("How long to wait for the rollout.")
            .attr(Attribute::optional(
                timeouts_attr::create,
                s.clone(),
                TIMEOUT_DOC,
            ))
            .attr(Attribute::optional(
                timeouts_attr::update,
                s.clone(),
                TIMEOUT_DOC,
            ));
        Schema::new(DESCRIPTION)
            .attr(Attribute::required(
                attr::cluster,
                s.clone(),
                "Cluster name or ARN.",
            ))
            .attr(Attribute::required(
                attr::service,
                s.clone(),
                "Service name or ARN.",
            ))
            .attr(Attribute::optional(
                attr::digest,
                s.clone(),
                "Image digest; a change forces a new deployment.",
            ))
            .attr(Attribute::optional(
                attr::triggers,
                Type::map(s.clone()),
                "Arbitrary values; any change forces a new deployment.",
            ))
            .attr(Attribute::optional_computed(
                attr::wait_for_steady_state,
                Type::Bool,
                "Wait until the new deployment completes. Default `true`.",
            ))
            .attr(Attribute::optional_computed(
                attr::verify_images,
                Type::Bool,
                "Before deploying, check that the task definition's images provide the platform \
                 its tasks run on: the task definition's `runtimePlatform`; without one, \
                 `linux/amd64` on Fargate, and on EC2 or capacity providers the CPU the cluster's \
                 container instances report (`ecs.cpu-architecture`; a warning when they don't \
                 agree or there are none). Default `true`.",
            ))
            .attr(Attribute::computed(
                attr::id,
                s.clone(),
                "`cluster/service`.",
            ))
            .attr(Attribute::computed(
                attr::deployment_id,
                s.clone(),
                "Id of the deployment this resource started, or followed.",
            ))
            .attr(Attribute::computed(
                attr::rollout_state,
                s.clone(),
                "Rollout state of that deployment when apply returned.",
            ))
            .attr(Attribute::computed(
                attr::task_definition_arn,
                s.clone(),
                "Task definition of that deployment.",
            ))
            .attr(Attribute::computed(
                attr::running_count,
                Type::Number,
                "Running tasks of that deployment.",
            ))
            .attr(Attribute::computed(
                attr::running_image_digests,
                Type::list(s),
                "Image digests reported by the service's running tasks after the rollout.",
            ))
            .block(NestedBlock::new(attr::timeouts, Nesting::Single, timeouts).max(1))
            .block(
                NestedBlock::new(
                    attr::require_provenance,
                    Nesting::List,
                    provenance::schema_block(),
                )
                .max(1),
            )
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let config = RedeployModel::from_value(config);
        let mut d = Diagnostics::new();
        for (name, value) in [
            (attr::cluster, &config.cluster),
            (attr::service, &config.service),
        ] {
            let Some(text) = value.as_str() else {
                continue;
            };
            if text.trim().is_empty() {
                d.push(Diagnostic::attr_error(
                    name,
                    "Empty Value",
                    format!("`{name}` must name an ECS {name} (name or ARN)."),
                ));
            } else if let Err(why) = names::check(name, text) {
                let summary = match name {
                    attr::cluster => "Invalid Cluster Name",
                    _ => "Invalid Service Name",
                };
                d.push(Diagnostic::attr_error(name, summary, why));
            }
        }
        if let Some(digest) = config.digest.as_str() {
            if !crate::oci::reference::is_valid_digest(digest) {
                d.push(Diagnostic::attr_error(
                    attr::digest,
                    "Invalid Digest",
                    format!(
                        "digest = {digest:?} is not an image digest; give `algorithm:hex` such as \
                         `sha256:` and 64 hex digits, e.g. stevedore_image_build.app.digest (not \
                         image_uri, and not a tag)."
                    ),
                ));
            }
        }
        let timeouts = TimeoutsModel::from_value(&config.timeouts);
        for (op, value) in [
            (timeouts_attr::create, &timeouts.create),
            (timeouts_attr::update, &timeouts.update),
        ] {
            let path = AttrPath::attr(attr::timeouts).then_attr(op);
            if let Some(text) = value.as_str() {
                let checked = duration::parse(text)
                    .and_then(|t| duration::check_bound(&format!("timeouts.{op}"), text, t));
                if let Err(e) = checked {
                    d.push(Diagnostic::error("Invalid Timeout", e).at(path));
                }
            }
        }
        provenance::validate(&config.require_provenance, &mut d);
        d
    }

    async fn plan(&self, _ctx: &Ctx, req: PlanRequest) -> PlanResponse {
        let failed = plan::has_failed_marker(&req.prior_private);
        let planned = plan::planned(&req.prior, &req.proposed, &req.config, failed);
        PlanResponse {
            planned,
            planned_private: req.prior_private,
            diags: self.validate(&req.config),
            ..Default::default()
        }
    }

    async fn apply(&self, ctx: &Ctx, req: ApplyRequest) -> ApplyResponse {
        apply::apply(ctx, req, PollPolicy::default()).await
    }

    async fn read(&self, ctx: &Ctx, state: Value, private: Vec<u8>) -> ReadResponse {
        let keep = |state: Value, private: Vec<u8>, d: Diagnostic| ReadResponse {
            new_state: state,
            private,
            diags: d.into(),
        };
        let Some((cluster, service)) = names(&state) else {
            return ReadResponse {
                new_state: state,
                private,
                diags: Diagnostics::new(),
            };
        };
        let provider = match ctx.provider() {
            Ok(p) => p,
            Err(d) => return keep(state, private, d),
        };
        let client = provider.ecs_client().await;
        let described = tokio::select! {
            r = ecs::describe(&client, cluster, service) => r,
            _ = ctx.cancel.cancelled() => return keep(
                state,
                private,
                Diagnostic::warning(
                    "ECS Service Not Refreshed",
                    "The refresh was interrupted; the state is kept as it was.",
                ),
            ),
        };
        match described {
            Ok(_) => ReadResponse {
                new_state: state,
                private,
                diags: Diagnostics::new(),
            },
            Err(e) if e.is_not_found() => {
                tracing::info!(cluster, service, error = %e, "ECS service is gone; removing it from state");
                ReadResponse {
                    new_state: Value::Null,
                    private: Vec::new(),
                    diags: Diagnostics::new(),
                }
            }
            Err(e) => {
                let detail = format!(
                    "Could not check that ECS service {service:?} in cluster {cluster:?} still \
                     exists: {e}.\n\nThe state is kept as it was; the next refresh tries again."
                );
                keep(
                    state,
                    private,
                    Diagnostic::warning("ECS Service Not Refreshed", detail),
                )
            }
        }
    }

    async fn delete(&self, _ctx: &Ctx, _prior: Value, _private: &[u8]) -> Diagnostics {
        // NO-OP: the service is left running; removal from state is all delete means.
        Diagnostics::new()
    }

    async fn import(&self, ctx: &Ctx, id: &str) -> Result<Value, Diagnostics> {
        let (cluster, service) = split_import_id(id).ok_or_else(|| {
            Diagnostic::error(
                "Invalid Import Id",
                format!(
                    "{id:?} is not CLUSTER/SERVICE. Use the cluster name or ARN, a slash, and the \
                     service name, e.g. `terraform import {TYPE_NAME}.web prod/web`."
                ),
            )
        })?;
        let provider = ctx.provider()?;
        let client = provider.ecs_client().await;
        let info = ecs::describe(&client, cluster, service)
            .await
            .map_err(|e| ecs_diagnostic("ECS Service Not Imported", cluster, service, e))?;
        Ok(RedeployModel {
            cluster: Value::string(cluster),
            service: Value::string(service),
            digest: Value::Null,
            triggers: Value::Null,
            wait_for_steady_state: Value::Bool(plan::DEFAULT_WAIT),
            verify_images: Value::Bool(plan::DEFAULT_VERIFY),
            timeouts: Value::Null,
            require_provenance: Value::List(Vec::new()),
            id: Value::string(format!("{cluster}/{service}")),
            // The service's PRIMARY deployment stands in for "the one this resource started".
            deployment_id: Value::opt_string(info.primary_deployment_id),
            rollout_state: Value::opt_string(info.primary_rollout_state),
            task_definition_arn: Value::opt_string(info.task_definition_arn),
            running_count: Value::int(info.running_count.into()),
            running_image_digests: Value::Null,
        }
        .into_value())
    }
}

/// `cluster` and `service` of a state or plan, when both are known strings.
fn names(v: &Value) -> Option<(&str, &str)> {
    Some((
        v.get(attr::cluster).as_str()?,
        v.get(attr::service).as_str()?,
    ))
}

/// `CLUSTER/SERVICE`, split at the last `/`: cluster ARNs
/// (`arn:aws:ecs:us-east-1:123456789012:cluster/prod`) contain slashes, service names cannot.
fn split_import_id(id: &str) -> Option<(&str, &str)> {
    let (cluster, service) = id.trim().rsplit_once('/')?;
    (!cluster.is_empty() && !service.is_empty()).then_some((cluster, service))
}

/// The wait for `op` (`create` or `update`) from the `timeouts` block.
/// Validation already rejected malformed and out-of-bound values; should one
/// get here anyway, it falls back to the default or is capped at the bound.
fn timeout(planned: &Value, op: &str) -> Duration {
    planned
        .at(&AttrPath::attr(attr::timeouts).then_attr(op))
        .as_str()
        .and_then(|t| duration::parse(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(duration::MAX)
}

/// An ECS failure as a diagnostic: the full explanation ECS errors carry,
/// plus what to do about the common cases.
fn ecs_diagnostic(summary: &str, cluster: &str, service: &str, e: EcsError) -> Diagnostic {
    let hint = match &e {
        EcsError::ServiceNotFound { .. } | EcsError::ClusterNotFound { .. } => {
            format!(
                "\n\nCheck `cluster` ({cluster:?}) and `service` ({service:?}) and the AWS \
                 region/account the provider uses."
            )
        }
        EcsError::Throttled { .. } => "\n\nTry again in a few minutes.".to_string(),
        _ => String::new(),
    };
    Diagnostic::error(summary, format!("{e}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_declares_the_models() {
        let schema = EcsRedeploy.schema().block;
        crate::schema::assert_declares(&schema, RedeployModel::ATTRIBUTES);
        let timeouts = &schema
            .blocks
            .iter()
            .find(|b| b.name == attr::timeouts)
            .unwrap()
            .block;
        crate::schema::assert_declares(timeouts, TimeoutsModel::ATTRIBUTES);
        let provenance = &schema
            .blocks
            .iter()
            .find(|b| b.name == attr::require_provenance)
            .unwrap()
            .block;
        crate::schema::assert_declares(provenance, ProvenanceModel::ATTRIBUTES);
    }

    #[test]
    fn import_ids_split_at_the_last_slash() {
        let cases = [
            ("prod/web", Some(("prod", "web"))),
            (
                "arn:aws:ecs:us-east-1:123456789012:cluster/prod/web",
                Some(("arn:aws:ecs:us-east-1:123456789012:cluster/prod", "web")),
            ),
            ("web", None),
            ("prod/", None),
            ("/web", None),
        ];
        for (id, want) in cases {
            assert_eq!(split_import_id(id), want, "{id}");
        }
    }

    fn config(timeouts: Value) -> Value {
        Value::object([
            (attr::cluster, Value::string("prod")),
            (attr::service, Value::string("web")),
            (attr::timeouts, timeouts),
        ])
    }

    #[test]
    fn malformed_timeouts_are_blamed_on_their_attribute() {
        let d = EcsRedeploy.validate(&config(Value::object([
            (timeouts_attr::create, Value::string("15x")),
            (timeouts_attr::update, Value::string("1h30m")),
        ])));
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert_eq!(
            d.0[0].attribute,
            Some(AttrPath::attr(attr::timeouts).then_attr(timeouts_attr::create))
        );
        assert!(
            d.0[0].detail.contains("unknown unit \"x\""),
            "{}",
            d.0[0].detail
        );
    }

    #[test]
    fn timeouts_above_a_day_are_refused_naming_path_and_value() {
        let d = EcsRedeploy.validate(&config(Value::object([
            (timeouts_attr::create, Value::string("24h")),
            (timeouts_attr::update, Value::string("2562047h")),
        ])));
        assert_eq!(d.0.len(), 1, "{d:?}");
        assert_eq!(d.0[0].summary, "Invalid Timeout");
        assert_eq!(
            d.0[0].attribute,
            Some(AttrPath::attr(attr::timeouts).then_attr(timeouts_attr::update))
        );
        assert!(
            d.0[0]
                .detail
                .starts_with("timeouts.update = \"2562047h\" is longer than the 24h"),
            "{}",
            d.0[0].detail
        );
    }

    #[test]
    fn unknown_and_absent_values_pass_validation() {
        assert!(EcsRedeploy.validate(&config(Value::Null)).is_empty());
        assert!(EcsRedeploy
            .validate(&config(Value::object([
                (timeouts_attr::create, Value::Unknown),
                (timeouts_attr::update, Value::Null)
            ])))
            .is_empty());
        let mut c = RedeployModel::from_value(&config(Value::Null));
        c.service = Value::Unknown;
        assert!(EcsRedeploy.validate(&c.into_value()).is_empty());
    }

    #[test]
    fn empty_cluster_or_service_is_refused() {
        let mut c = RedeployModel::from_value(&config(Value::Null));
        c.cluster = Value::string(" ");
        let d = EcsRedeploy.validate(&c.into_value());
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].attribute, Some(AttrPath::attr(attr::cluster)));
    }

    #[test]
    fn names_ecs_refuses_are_refused_at_validate_naming_the_attribute() {
        let huge = "w".repeat(100_000);
        let cases = [
            (attr::cluster, "prod\nblue", "\"prod\\nblue\""),
            (attr::cluster, "café", "\"café\""),
            (attr::service, huge.as_str(), "(100000 characters)"),
            (
                attr::service,
                "arn:aws:ecs:us-east-1:123456789012:service/prod/a b",
                "a b",
            ),
        ];
        for (name, value, quoted) in cases {
            let mut c = config(Value::Null);
            c.set(name, Value::string(value));
            let d = EcsRedeploy.validate(&c);
            assert_eq!(d.0.len(), 1, "{name}: {d:?}");
            assert_eq!(d.0[0].attribute, Some(AttrPath::attr(name)));
            assert!(d.0[0].detail.contains(quoted), "{}", d.0[0].detail);
            assert!(d.0[0].detail.contains("ASCII letters"), "{}", d.0[0].detail);
        }
        let mut c = config(Value::Null);
        c.set(
            attr::cluster,
            Value::string("arn:aws:ecs:us-east-1:123456789012:cluster/prod"),
        );
        c.set(attr::service, Value::Unknown);
        assert!(EcsRedeploy.validate(&c).is_empty());
    }

    #[test]
    fn timeouts_default_to_fifteen_minutes() {
        let planned = config(Value::object([
            (timeouts_attr::create, Value::string("90s")),
            (timeouts_attr::update, Value::Null),
        ]));
        assert_eq!(
            timeout(&planned, timeouts_attr::create),
            Duration::from_secs(90)
        );
        assert_eq!(timeout(&planned, timeouts_attr::update), DEFAULT_TIMEOUT);
        assert_eq!(
            timeout(&config(Value::Null), timeouts_attr::create),
            DEFAULT_TIMEOUT
        );
        let huge = config(Value::object([
            (timeouts_attr::create, Value::string("2562047h")),
            (timeouts_attr::update, Value::Null),
        ]));
        assert_eq!(timeout(&huge, timeouts_attr::create), duration::MAX);
    }
}
