//! UpdateDatabase: write the new size into the database's `spec.storage` with a merge patch of
//! that one field (never a full replace of the database object).

use kube::api::{Patch, PatchParams};
use serde_json::json;
use volops_shared::conditions::{self as c, condition};

use super::{Job, Outcome};
use crate::{
    context::Ctx,
    error::{KubeContext, Result},
};

pub async fn update(ctx: &Ctx, job: &Job) -> Result<Outcome> {
    // The size admitted, whatever the spec says now.
    let target = job.target()?;
    let patch = json!({"spec": {"storage": {"resources": {"requests": {"storage": target.as_str()}}}}});
    ctx.database_api(job.kind, &job.namespace)
        .patch(&job.database, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| {
            format!(
                "update spec.storage of {} {}/{}",
                job.kind.kind(),
                job.namespace,
                job.database
            )
        })?;
    Ok(Outcome::Done(vec![condition(
        c::UPDATE_DATABASE,
        c::TRUE,
        c::UPDATE_DATABASE,
        &format!(
            "successfully updated the storage of {} {} to {target}",
            job.kind.kind(),
            job.database
        ),
        job.generation,
        c::now(),
    )]))
}
