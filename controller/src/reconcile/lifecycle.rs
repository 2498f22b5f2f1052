//! What a reconcile does around the steps: claim the request, add the finalizer, report
//! ignored annotations, and finish a request that is over.

use kube::{
    api::{Patch, PatchParams},
    runtime::{controller::Action, events::EventType},
};
use serde_json::json;
use tracing::{debug, warn};
use volops_shared::conditions::{self as c, condition};

use super::FINALIZER;
use super::failure::{publish_problems, restore_failed};
use super::report::publish;
use crate::{
    claim,
    context::Ctx,
    error::{KubeContext, Result},
    forged, saved_store,
    steps::{self, Job, cleanup::Verdict},
};

/// A request that is over (final, Skipped, deleted) keeps nothing of ours. If it has saved
/// state, one more cleanup pass makes sure nothing stays taken away (the phase is written
/// through `/status`, which is not proof the cleanup ran), then the state and the finalizer go.
pub(super) async fn finish(ctx: &Ctx, job: &mut Job) -> Result<Action> {
    if !job.finalizers.iter().any(|f| f == FINALIZER) {
        // A left-over saved state is the sweep's.
        return Ok(Action::await_change());
    }
    if job.load_saved(ctx).await?.is_some() {
        match steps::cleanup::pass(ctx, job).await? {
            Verdict::Restored => {}
            Verdict::GaveUp(problems) => {
                if let Some(cond) = restore_failed(job, &problems) {
                    // Best effort: a request being deleted may refuse it.
                    let _ = job.record(ctx, vec![cond]).await;
                }
                publish_problems(ctx, job, &problems);
            }
            Verdict::Wait { reason, after } => {
                debug!(request = %job.describe(), %reason, "cleanup before the finalizer goes");
                return Ok(Action::requeue(after));
            }
        }
        if let Some(uid) = job.uid.clone() {
            saved_store::delete(ctx, &uid).await?;
        }
    }
    let finalizers: Vec<String> = job
        .finalizers
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"resourceVersion": job.resource_version, "finalizers": finalizers}});
    let obj = job
        .api(ctx)
        .patch(&job.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| format!("finish {}", job.describe()))?;
    job.wrote(ctx, obj);
    job.finalizers = finalizers;
    ctx.request_versions.forget(job.kind, &job.namespace, &job.name);
    Ok(Action::await_change())
}

/// Claims an unclaimed request, unless another controller's status shows it acts on it
/// already: then it is left alone and reported (a Warning event). False when left alone.
pub(super) async fn try_claim(ctx: &Ctx, job: &mut Job) -> Result<bool> {
    if let Some(why) = claim::foreign(&job.status) {
        // A request an earlier volops (before claims) started has volops's finalizer and a
        // saved state, which only the controller can write (its own namespace).
        // (Its deletion is let through to the finalizer's cleanup.)
        let legacy = job.finalizers.iter().any(|f| f == FINALIZER)
            && (job.deleting || job.load_saved(ctx).await?.is_some());
        if !legacy {
            warn!(request = %job.describe(), %why, "left alone");
            publish(ctx, job, EventType::Warning, claim::NOT_CLAIMED, why);
            return Ok(false);
        }
    }
    if job.deleting {
        return Ok(true);
    }
    // Guarded by the resourceVersion: if the other controller wrote the status meanwhile, this
    // write conflicts and the next reconcile sees its status.
    let cond = condition(
        claim::CLAIMED,
        c::TRUE,
        claim::CLAIMED,
        &format!("{} runs this request", ctx.config.identity),
        job.generation,
        c::now(),
    );
    job.record(ctx, vec![cond]).await?;
    Ok(true)
}

pub(super) async fn add_finalizer(ctx: &Ctx, job: &mut Job) -> Result<()> {
    let mut finalizers = job.finalizers.clone();
    finalizers.push(FINALIZER.to_owned());
    let patch = json!({"metadata": {"resourceVersion": job.resource_version, "finalizers": finalizers}});
    let obj = job
        .api(ctx)
        .patch(&job.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| format!("add the finalizer of {}", job.describe()))?;
    job.wrote(ctx, obj);
    job.finalizers = finalizers;
    Ok(())
}

/// Annotations only the controller could once have used are a tenant's today: reported (a
/// condition and a Warning event) whenever the set changes, never acted on.
pub(super) async fn report_ignored_annotations(ctx: &Ctx, job: &mut Job) -> Result<()> {
    let Some(message) = forged::report(&forged::ignored_keys(&job.annotations)) else {
        return Ok(());
    };
    let reported = c::find(&job.status.conditions, forged::CONDITION).and_then(|c| c.message.as_deref());
    if reported == Some(message.as_str()) {
        return Ok(());
    }
    let cond = condition(
        forged::CONDITION,
        c::TRUE,
        forged::CONDITION,
        &message,
        job.generation,
        c::now(),
    );
    job.record(ctx, vec![cond]).await?;
    warn!(request = %job.describe(), %message, "ignored annotations");
    publish(ctx, job, EventType::Warning, forged::CONDITION, message);
    Ok(())
}
