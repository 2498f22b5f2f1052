//! A request the API server stores but this controller's types cannot read (docs/SECURITY.md):
//! read leniently as the API server has it, claimed like any other, failed at its current step
//! with the reason, and cleaned up from its saved state; the other requests of its kind go on.

use kube::{Api, api::DynamicObject, core::error_boundary::InvalidObject, runtime::controller::Action};
use serde_json::Value;
use volops_shared::api::ops::VOLUME_EXPANSION;

use super::{check, decide, fail, kubedb_owns, record, run_step};
use crate::{
    context::Ctx,
    decide::Step,
    error::{KubeContext, Result},
    ops::OpsRequest,
    steps::Job,
};
use std::ops::ControlFlow;

pub(super) async fn reconcile<R: OpsRequest>(ctx: &Ctx, invalid: &InvalidObject) -> Result<Action> {
    let meta = &invalid.metadata;
    let (ns, name) = (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    );
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &R::KIND.ops_resource());
    let Some(obj) = api
        .get_opt(&name)
        .await
        .during(|| format!("get {} {ns}/{name}", R::KIND.ops_kind()))?
    else {
        return Ok(Action::await_change());
    };
    let spec_type = obj.data.pointer("/spec/type").and_then(Value::as_str);
    if spec_type != Some(VOLUME_EXPANSION) || kubedb_owns(ctx) {
        return Ok(Action::await_change());
    }
    let mut job = Job::unreadable(R::KIND, &obj);
    let step = match decide(ctx, &mut job).await? {
        ControlFlow::Continue(step) => step,
        ControlFlow::Break(action) => return Ok(action),
    };
    if step != Step::Cleanup {
        let reason = format!(
            "{} {ns}/{name} cannot be read by volops: {}; create a new request with values volops \
             can read",
            R::KIND.ops_kind(),
            invalid.error
        );
        return fail(ctx, &mut job, step, reason).await;
    }
    if let Err(reason) = check(ctx, &mut job, step).await? {
        return fail(ctx, &mut job, step, reason).await;
    }
    let outcome = run_step(ctx, &mut job, step).await?;
    record(ctx, &mut job, step, outcome, None).await
}
