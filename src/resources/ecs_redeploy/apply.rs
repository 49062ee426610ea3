//! Apply: check the images, start (or adopt) a deployment, follow it, and
//! record what happened, also when it went wrong after ECS was changed.

use super::{attr, timeouts_attr, RedeployModel};
use super::{deploy, follow, names, plan, prove, provenance, timeout, verify};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ecs::{self, DeploymentOutcome, PollPolicy};
use crate::oci::Digest;
use crate::registry::RegistryClient;
use crate::resource::{ApplyRequest, ApplyResponse, Ctx};
use std::time::Duration;

pub(super) async fn apply(ctx: &Ctx, req: ApplyRequest, poll: PollPolicy) -> ApplyResponse {
    // Planned known deployment outputs mean the plan started no deployment
    // (only wait/verify/timeouts changed): the planned state is the new state.
    let planned = RedeployModel::from_value(&req.planned);
    if !planned.deployment_id.is_unknown() {
        return ApplyResponse {
            new_state: req.planned,
            private: req.planned_private,
            diags: Diagnostics::new(),
        };
    }
    let keep = |diags: Diagnostics| ApplyResponse {
        new_state: req.prior.clone(),
        private: req.planned_private.clone(),
        diags,
    };
    let Some((cluster, service)) = names(&req.planned) else {
        return keep(
            Diagnostic::internal("apply got a plan whose cluster or service is not a known string")
                .into(),
        );
    };
    let provider = match ctx.provider() {
        Ok(p) => p,
        Err(d) => return keep(d.into()),
    };
    let client = provider.ecs_client().await;
    let provenance = match provenance::policy(req.planned.get(attr::require_provenance)) {
        Ok(policy) => policy,
        Err(d) => return keep(d.into()),
    };
    let mut warnings = match check_images(ctx, &req, &client, &provenance, cluster, service).await {
        Ok(warnings) => warnings,
        Err(d) => return keep(d),
    };
    let target = deploy::Target {
        cluster,
        service,
        wait: wait_for(&req),
    };
    // validate proved a known digest well formed.
    let digest = planned.digest.as_str().and_then(|d| Digest::parse(d).ok());
    let adopted = match adopt(ctx, &client, &target, digest.as_deref(), &req).await {
        Ok(adopted) => adopted,
        Err(d) => {
            warnings.push(d);
            return keep(warnings);
        }
    };
    let mut recorded = match deploy::deploy(&client, &target, &ctx.cancel, poll, adopted).await {
        Ok(r) => r,
        Err(d) => {
            warnings.push(d);
            return keep(warnings);
        }
    };
    if let (Some(digest), Some(outcome)) = (&digest, &recorded.outcome) {
        let proof = tokio::select! {
            proof = prove_digest(&client, &provider.registry, digest, outcome) => proof,
            _ = ctx.cancel.cancelled() => Ok(Some(Diagnostic::warning(
                "Running Image Not Proven",
                format!("ECS deployment {} completed; checking that its tasks run {digest} was \
                         interrupted.", outcome.deployment_id),
            ))),
        };
        match proof {
            Ok(warning) => warnings.extend(warning.into_iter().collect::<Vec<_>>().into()),
            Err(error) => recorded.error = Some(error),
        }
    }
    let mut new_state = req.planned.clone();
    for (name, value) in &recorded.outputs {
        new_state.set(name, value.clone());
    }
    let private = deploy::private_for(&recorded);
    let mut diags = warnings;
    diags.extend(recorded.error.into_iter().collect::<Vec<_>>().into());
    ApplyResponse {
        new_state,
        private,
        diags,
    }
}

/// The checks before anything touches ECS: the images provide the task's
/// platform (`verify_images`) and have signed provenance (`require_provenance`,
/// which needs that resolution, so it runs the image check whatever
/// `verify_images` says). `Ok` carries warnings; `Err` means nothing may be
/// deployed.
async fn check_images(
    ctx: &Ctx,
    req: &ApplyRequest,
    client: &aws_sdk_ecs::Client,
    policy: &Option<provenance::Policy>,
    cluster: &str,
    service: &str,
) -> Result<Diagnostics, Diagnostics> {
    if !planned_bool(req, attr::verify_images, plan::DEFAULT_VERIFY) && policy.is_none() {
        return Ok(Diagnostics::new());
    }
    let registry = &ctx.provider()?.registry;
    let blame = verify::Blame {
        digest_set: !RedeployModel::from_value(&req.config).digest.is_null(),
        provenance: policy.is_some(),
    };
    let cancelled = |what: &str| {
        Diagnostic::error(
            "Image Verification Cancelled",
            format!(
                "Terraform was interrupted while {what} of ECS service {service:?} in cluster \
                 {cluster:?} were being checked. Nothing was deployed; run apply again."
            ),
        )
    };
    // An interrupt stops the check at once (its ECS and registry calls
    // are dropped); nothing has been deployed yet.
    let verified = verify::verify_images(client, registry, cluster, service, &ctx.cancel, blame);
    let checked = tokio::select! {
        _ = ctx.cancel.cancelled() => return Err(cancelled("the images").into()),
        checked = verified => checked?,
    };
    let Some(policy) = policy else {
        return Ok(checked.warnings);
    };
    let proven = tokio::select! {
        _ = ctx.cancel.cancelled() => Err(cancelled("the provenance of the images").into()),
        proven = provenance::require(registry, &checked.images, policy) => proven,
    };
    match proven {
        Ok(()) => Ok(checked.warnings),
        Err(mut d) => {
            d.extend(checked.warnings);
            Err(d)
        }
    }
}

fn planned_bool(req: &ApplyRequest, name: &str, default: bool) -> bool {
    req.planned.get(name).as_bool().unwrap_or(default)
}

/// How long to wait for the rollout, or `None` when not waiting.
fn wait_for(req: &ApplyRequest) -> Option<Duration> {
    if !planned_bool(req, attr::wait_for_steady_state, plan::DEFAULT_WAIT) {
        return None;
    }
    let op = if req.prior.is_null() {
        timeouts_attr::create
    } else {
        timeouts_attr::update
    };
    Some(timeout(&req.planned, op))
}

/// The deployment to follow instead of forcing one (see `follow`), if any.
/// `Err` when interrupted: nothing was deployed.
async fn adopt(
    ctx: &Ctx,
    client: &aws_sdk_ecs::Client,
    t: &deploy::Target<'_>,
    digest: Option<&str>,
    req: &ApplyRequest,
) -> Result<Option<follow::Adopted>, Diagnostic> {
    let (Some(digest), Ok(provider)) = (digest, ctx.provider()) else {
        return Ok(None);
    };
    let prior = RedeployModel::from_value(&req.prior);
    let recorded = prior.deployment_id.as_str();
    let look = follow::adoptable(
        client,
        &provider.registry,
        t.cluster,
        t.service,
        digest,
        recorded,
    );
    tokio::select! {
        adopted = look => Ok(adopted),
        _ = ctx.cancel.cancelled() => Err(Diagnostic::error(
            "ECS Deployment Cancelled",
            "Interrupted while looking at the service's deployments. Nothing was deployed.",
        )),
    }
}

/// Checks that the completed deployment's tasks run `digest`, reading the
/// task definition's images for the explanation (and the index lookup).
async fn prove_digest(
    client: &aws_sdk_ecs::Client,
    registry: &RegistryClient,
    digest: &Digest,
    outcome: &DeploymentOutcome,
) -> Result<Option<Diagnostic>, Diagnostic> {
    let task_definition = outcome.task_definition_arn.as_deref();
    let images = match task_definition {
        Some(arn) => match ecs::task_definition_images(client, arn).await {
            Ok(images) => images.images,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the task definition's images");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let asked = prove::Asked {
        digest,
        deployment_id: &outcome.deployment_id,
        task_definition,
        images: &images,
    };
    prove::prove(registry, &asked, &outcome.deployment_tasks).await
}
