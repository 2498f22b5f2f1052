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
    // The saved manifests go with the finalizer once the request is final (reconcile::finish).
    Ok(true)
}
