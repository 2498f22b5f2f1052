//! The cleanup that always follows a failure (and a deletion mid-way): wait while a claim of a
//! pod taken down is in its controller-side resize, recreate any workload still missing,
//! recreate any saved pod that is missing, resume the database. Idempotent; true once
//! everything is back.

use super::{Job, expand, pause, workloads};
use crate::{context::Ctx, decide::holds_pause, error::Result};

pub async fn run(ctx: &Ctx, job: &mut Job) -> Result<bool> {
    if expand::claims_resizing(ctx, job).await? {
        return Ok(false);
    }
    workloads::restore(ctx, job).await?;
    if !expand::restore_pods(ctx, job).await? {
        return Ok(false);
    }
    if holds_pause(&job.status.conditions) {
        pause::resume(ctx, job).await?;
    }
    forget_workloads(ctx, job).await?;
    Ok(true)
}

/// Drops the saved workload manifests once the workloads exist again.
pub async fn forget_workloads(ctx: &Ctx, job: &mut Job) -> Result<()> {
    let changes: Vec<(String, Option<String>)> = workloads::saved_keys(job)
        .into_iter()
        .map(|k| (k, None))
        .collect();
    job.annotate(ctx, &changes).await
}
