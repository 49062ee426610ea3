//! Pure plan decisions: when a new deployment is due, what the plan says about
//! every attribute, and the private-state marker a failed rollout leaves.
//!
//! Terraform checks the plan against prior and config (terraform
//! `internal/plans/objchange/plan_valid.go`, AssertPlanValid): computed values
//! we cannot know before apply are planned unknown, and an update that starts
//! no deployment plans the prior values exactly.

use super::{attr, RedeployModel};
use crate::value::Value;

/// The attributes whose change forces a new deployment.
/// NOTE: `require_provenance` is not one: it is a policy the next deployment
/// must pass, not an input of the deployment, so changing it alone plans an
/// update that deploys nothing (and checks nothing until a deployment is due).
pub const DEPLOY_INPUTS: [&str; 4] = [attr::cluster, attr::service, attr::digest, attr::triggers];

/// What a deployment produces; unknown in a plan that starts one.
pub const DEPLOYMENT_OUTPUTS: [&str; 5] = [
    attr::deployment_id,
    attr::rollout_state,
    attr::task_definition_arn,
    attr::running_count,
    attr::running_image_digests,
];

pub const DEFAULT_WAIT: bool = true;
pub const DEFAULT_VERIFY: bool = true;

/// Whether applying `proposed` over `prior` must force a new deployment.
/// A value still unknown counts as changed: it will be known, and likely new, at apply.
pub fn needs_deployment(prior: &Value, proposed: &Value, prior_failed: bool) -> bool {
    if prior.is_null() || prior_failed {
        return true;
    }
    DEPLOY_INPUTS.iter().any(|name| {
        let new = proposed.get(name);
        !new.is_wholly_known() || new != prior.get(name)
    })
}

/// `cluster/service`, or unknown while either is.
pub fn id(cluster: &Value, service: &Value) -> Value {
    match (cluster.as_str(), service.as_str()) {
        (Some(c), Some(s)) => Value::string(format!("{c}/{s}")),
        _ => Value::Unknown,
    }
}

/// The planned state: `proposed` with defaults filled in, `id` set, and the
/// deployment outputs unknown when a deployment is due, else kept from prior.
pub fn planned(prior: &Value, proposed: &Value, config: &Value, prior_failed: bool) -> Value {
    let mut planned = proposed.clone();
    for (name, default) in [
        (attr::wait_for_steady_state, DEFAULT_WAIT),
        (attr::verify_images, DEFAULT_VERIFY),
    ] {
        if config.get(name).is_null() {
            planned.set(name, Value::Bool(default));
        }
    }
    let inputs = RedeployModel::from_value(proposed);
    planned.set(attr::id, id(&inputs.cluster, &inputs.service));
    let deploy = needs_deployment(prior, proposed, prior_failed);
    for name in DEPLOYMENT_OUTPUTS {
        // NOTE: on update ProposedNew already carries the prior computed values;
        // copying them again keeps "no deployment" plans exactly equal to prior.
        let value = if deploy {
            Value::Unknown
        } else {
            prior.get(name).clone()
        };
        planned.set(name, value);
    }
    planned
}

/// Private state after an apply whose deployment did not end well. While it is
/// there, every plan starts a new deployment: the update failed, so re-running
/// apply must try again rather than report "no changes" over a broken rollout.
/// (A failed create needs no marker: Terraform taints it and plans a replacement.)
pub fn failed_marker(deployment_id: &str) -> Vec<u8> {
    let marker = FailedMarker {
        failed_deployment: deployment_id.to_string(),
    };
    serde_json::to_vec(&marker).unwrap_or_default()
}

/// The private state [`failed_marker`] writes.
#[derive(serde::Serialize, serde::Deserialize)]
struct FailedMarker {
    failed_deployment: String,
}

/// Whether `private` holds [`failed_marker`]. Anything else (empty, older
/// formats) means the recorded deployment succeeded or was imported.
pub fn has_failed_marker(private: &[u8]) -> bool {
    serde_json::from_slice::<FailedMarker>(private).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::TimeoutsModel;

    fn model(v: &Value) -> RedeployModel {
        RedeployModel::from_value(v)
    }

    fn state(digest: &str) -> Value {
        RedeployModel {
            cluster: Value::string("prod"),
            service: Value::string("web"),
            digest: Value::string(digest),
            triggers: Value::Null,
            wait_for_steady_state: Value::Bool(true),
            verify_images: Value::Bool(true),
            timeouts: Value::Null,
            require_provenance: Value::List(Vec::new()),
            id: Value::string("prod/web"),
            deployment_id: Value::string("ecs-svc/1"),
            rollout_state: Value::string("COMPLETED"),
            task_definition_arn: Value::string("arn:td/web:3"),
            running_count: Value::int(2),
            running_image_digests: Value::string_list(["sha256:aa"]),
        }
        .into_value()
    }

    fn config_of(v: &Value) -> Value {
        let mut c = v.clone();
        for name in DEPLOYMENT_OUTPUTS.iter().chain(&[
            attr::id,
            attr::wait_for_steady_state,
            attr::verify_images,
        ]) {
            c.set(name, Value::Null);
        }
        c
    }

    fn with(mut v: Value, name: &str, value: Value) -> Value {
        v.set(name, value);
        v
    }

    #[test]
    fn deployment_is_due_exactly_when_an_input_changes() {
        let prior = state("sha256:aa");
        let triggers = Value::string_map([("release", "7")]);
        let cases: Vec<(&str, Value, bool, bool)> = vec![
            ("create", Value::Null, false, true),
            ("nothing changed", prior.clone(), false, false),
            (
                "digest changed",
                with(prior.clone(), attr::digest, Value::string("sha256:bb")),
                false,
                true,
            ),
            (
                "digest unknown",
                with(prior.clone(), attr::digest, Value::Unknown),
                false,
                true,
            ),
            (
                "digest removed",
                with(prior.clone(), attr::digest, Value::Null),
                false,
                true,
            ),
            (
                "triggers added",
                with(prior.clone(), attr::triggers, triggers.clone()),
                false,
                true,
            ),
            (
                "trigger value unknown",
                with(
                    prior.clone(),
                    attr::triggers,
                    Value::Map([("release".to_string(), Value::Unknown)].into()),
                ),
                false,
                true,
            ),
            (
                "cluster changed",
                with(prior.clone(), attr::cluster, Value::string("staging")),
                false,
                true,
            ),
            (
                "service changed",
                with(prior.clone(), attr::service, Value::string("api")),
                false,
                true,
            ),
            (
                "only wait changed",
                with(
                    prior.clone(),
                    attr::wait_for_steady_state,
                    Value::Bool(false),
                ),
                false,
                false,
            ),
            (
                "only verify changed",
                with(prior.clone(), attr::verify_images, Value::Bool(false)),
                false,
                false,
            ),
            (
                "only timeouts changed",
                with(
                    prior.clone(),
                    attr::timeouts,
                    TimeoutsModel {
                        create: Value::string("1h"),
                        update: Value::Null,
                    }
                    .into_value(),
                ),
                false,
                false,
            ),
            (
                "only require_provenance changed",
                with(
                    prior.clone(),
                    attr::require_provenance,
                    Value::List(vec![super::super::ProvenanceModel {
                        public_key_file: Value::string("keys/provenance.pub"),
                        builder_id: Value::Null,
                    }
                    .into_value()]),
                ),
                false,
                false,
            ),
            ("prior rollout failed", prior.clone(), true, true),
        ];
        for (name, proposed, failed, want) in cases {
            let prior_for_case = if name == "create" {
                Value::Null
            } else {
                prior.clone()
            };
            let proposed = if name == "create" {
                config_of(&prior)
            } else {
                proposed
            };
            assert_eq!(
                needs_deployment(&prior_for_case, &proposed, failed),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn create_plans_deployment_outputs_unknown_and_id_known() {
        let config = config_of(&state("sha256:aa"));
        let planned = planned(&Value::Null, &config, &config, false);
        for name in DEPLOYMENT_OUTPUTS {
            assert_eq!(planned.get(name), &Value::Unknown, "{name}");
        }
        assert_eq!(&model(&planned).id, &Value::string("prod/web"));
        assert_eq!(&model(&planned).wait_for_steady_state, &Value::Bool(true));
        assert_eq!(&model(&planned).verify_images, &Value::Bool(true));
        assert_eq!(&model(&planned).digest, &Value::string("sha256:aa"));
    }

    #[test]
    fn create_with_unknown_service_plans_unknown_id() {
        let config = with(
            config_of(&state("sha256:aa")),
            attr::service,
            Value::Unknown,
        );
        assert_eq!(
            &model(&planned(&Value::Null, &config, &config, false)).id,
            &Value::Unknown
        );
    }

    #[test]
    fn unchanged_inputs_plan_the_prior_state_exactly() {
        let prior = state("sha256:aa");
        // ProposedNew: config values, prior values for computed attributes.
        assert_eq!(planned(&prior, &prior, &config_of(&prior), false), prior);
    }

    #[test]
    fn explicit_settings_win_over_defaults() {
        let prior = state("sha256:aa");
        let proposed = with(
            prior.clone(),
            attr::wait_for_steady_state,
            Value::Bool(false),
        );
        let config = with(
            config_of(&prior),
            attr::wait_for_steady_state,
            Value::Bool(false),
        );
        let planned = planned(&prior, &proposed, &config, false);
        assert_eq!(&model(&planned).wait_for_steady_state, &Value::Bool(false));
        assert_eq!(
            &model(&planned).deployment_id,
            &Value::string("ecs-svc/1"),
            "no new deployment"
        );
    }

    #[test]
    fn changed_digest_plans_a_new_deployment() {
        let prior = state("sha256:aa");
        let proposed = with(prior.clone(), attr::digest, Value::string("sha256:bb"));
        let planned = planned(&prior, &proposed, &config_of(&proposed), false);
        for name in DEPLOYMENT_OUTPUTS {
            assert_eq!(planned.get(name), &Value::Unknown, "{name}");
        }
        assert_eq!(&model(&planned).id, &Value::string("prod/web"));
    }

    #[test]
    fn moved_service_plans_the_new_id() {
        let prior = state("sha256:aa");
        let proposed = with(prior.clone(), attr::cluster, Value::string("staging"));
        let planned = planned(&prior, &proposed, &config_of(&proposed), false);
        assert_eq!(&model(&planned).id, &Value::string("staging/web"));
        assert_eq!(&model(&planned).deployment_id, &Value::Unknown);
    }

    #[test]
    fn failed_marker_round_trips_and_nothing_else_counts() {
        assert!(has_failed_marker(&failed_marker("ecs-svc/9")));
        for other in [
            &b""[..],
            b"{}",
            b"not json",
            b"{\"failed_deployment\":null}",
        ] {
            assert!(
                !has_failed_marker(other),
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
