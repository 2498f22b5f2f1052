//! PauseDatabase and ResumeDatabase: the `Paused` condition on the database's status
//! (docs/KUBEDB.md). With the kubedb handshake volops asks (Unknown) and the provisioner
//! acknowledges (True); with `self` volops sets True itself. Resume removes the condition.

use kube::{
    ResourceExt,
    api::{DynamicObject, Patch, PatchParams},
    runtime::events::EventType,
};
use serde_json::{Value, json};
use volops_shared::{
    api::Condition,
    conditions::{self as c, condition},
};

use super::{Job, Outcome, SOON, get_database};
use crate::{
    PauseHandshake,
    context::Ctx,
    error::{Error, KubeContext, Result},
    reconcile::publish_as,
};

/// The database's status conditions.
pub fn database_conditions(db: &DynamicObject) -> Vec<Condition> {
    db.data
        .pointer("/status/conditions")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// What the pause step does next, given the database's `Paused` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseAction {
    /// Paused is True: the step is done.
    Done,
    /// Asked, not yet acknowledged: wait for the provisioner.
    WaitForProvisioner,
    /// Write Paused with this status.
    Write(&'static str),
}

/// The status of the database's `Paused` condition, if it has one.
pub fn paused_status(conditions: &[Condition]) -> Option<&str> {
    c::find(conditions, c::PAUSED).map(|p| p.status.as_str())
}

/// Pure: the pause action for the status of a database's `Paused` condition and the
/// handshake mode.
pub fn pause_action(paused: Option<&str>, handshake: PauseHandshake) -> PauseAction {
    match (paused, handshake) {
        (Some(c::TRUE), _) => PauseAction::Done,
        (Some(c::UNKNOWN), PauseHandshake::Kubedb) => PauseAction::WaitForProvisioner,
        (_, PauseHandshake::Kubedb) => PauseAction::Write(c::UNKNOWN),
        (_, PauseHandshake::SelfPause) => PauseAction::Write(c::TRUE),
    }
}

async fn write_conditions(ctx: &Ctx, job: &Job, db: &DynamicObject, conditions: &[Condition]) -> Result<()> {
    let conditions: Value = serde_json::to_value(conditions).map_err(|source| Error::Json {
        what: "database conditions".into(),
        source,
    })?;
    let patch =
        json!({"metadata": {"resourceVersion": db.resource_version()}, "status": {"conditions": conditions}});
    ctx.database_api(job.kind, &job.namespace)
        .patch_status(&job.database, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .during(|| {
            format!(
                "update conditions of {} {}/{}",
                job.kind.kind(),
                job.namespace,
                job.database
            )
        })?;
    Ok(())
}

/// Whether the cached database shows this request's pause still waiting for the provisioner:
/// waiting needs no fresh read, as the database's watch wakes the request when it changes.
fn cached_wait(ctx: &Ctx, job: &Job) -> bool {
    c::find(&job.status.conditions, c::PAUSE_DATABASE).is_some()
        && ctx
            .caches(job.kind)
            .and_then(|caches| caches.database(&job.namespace, &job.database))
            .is_some_and(|db| {
                pause_action(db.paused.as_deref(), ctx.config.pause_handshake)
                    == PauseAction::WaitForProvisioner
            })
}

/// KubeDB's condition for a pause or resume that succeeded (`verb`: "paused", "resumed").
fn succeeded(job: &Job, type_: &str, reason: &str, verb: &str) -> Condition {
    let message = format!(
        "Successfully {verb} {} database: {}/{} for {}: {}",
        job.kind.kind(),
        job.namespace,
        job.database,
        job.kind.ops_kind(),
        job.name
    );
    condition(type_, c::TRUE, reason, &message, job.generation, c::now())
}

const WAITING_FOR_PROVISIONER: &str = "waiting for the pause request to be approved by the provisioner";

pub async fn pause(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    if cached_wait(ctx, job) {
        return Ok(Outcome::wait(WAITING_FOR_PROVISIONER, SOON));
    }
    // Anything else is decided on a fresh copy: a cached Paused=True may be an older request's.
    let Some(db) = get_database(ctx, job).await? else {
        return Ok(Outcome::Fail(format!(
            "{} does not exist",
            job.describe_database()
        )));
    };
    let conditions = database_conditions(&db);
    let action = pause_action(paused_status(&conditions), ctx.config.pause_handshake);
    let requested = job.state()?.pause_requested;
    if action == PauseAction::Done && !requested {
        // Not this request's pause (its owner's, another tool's): wait until it is resumed,
        // and never resume it.
        return Ok(Outcome::wait(
            format!(
                "{} is paused by someone else; waiting until it is resumed",
                job.describe_database()
            ),
            SOON,
        ));
    }
    // Saved before the database is touched: whatever happens next, the cleanup (or the sweep,
    // if the request is deleted) resumes it.
    if !requested {
        job.saved_mut(ctx).await?.pause_requested = true;
        job.save(ctx).await?;
    }
    if action != PauseAction::Done && c::find(&job.status.conditions, c::PAUSE_DATABASE).is_none() {
        record_pausing(ctx, job).await?;
    }
    match action {
        PauseAction::Done => Ok(Outcome::Done(vec![succeeded(
            job,
            c::PAUSE_DATABASE,
            c::DATABASE_PAUSE_SUCCEEDED,
            "paused",
        )])),
        PauseAction::WaitForProvisioner => Ok(Outcome::wait(WAITING_FOR_PROVISIONER, SOON)),
        PauseAction::Write(status) => {
            write_paused(ctx, job, &db, conditions, status).await?;
            Ok(Outcome::wait(
                format!("asked {} {} to pause", job.kind.kind(), job.database),
                SOON,
            ))
        }
    }
}

/// Records the intent before the database is touched (in the same pass), so a failure or a
/// crash from here on knows this request holds the pause and the cleanup resumes it.
async fn record_pausing(ctx: &Ctx, job: &mut Job) -> Result<()> {
    let message = format!(
        "Pausing {} database: {}/{}",
        job.kind.kind(),
        job.namespace,
        job.database
    );
    let now = c::now();
    let pausing = condition(
        c::PAUSE_DATABASE,
        c::UNKNOWN,
        c::PAUSE_DATABASE,
        &message,
        job.generation,
        now,
    );
    job.record(ctx, vec![pausing]).await?;
    // KubeDB's event for the same act.
    publish_as(
        ctx,
        job,
        EventType::Normal,
        c::STARTING,
        c::PAUSE_DATABASE,
        message,
    );
    Ok(())
}

/// Writes the database's `Paused` condition with `status`.
async fn write_paused(
    ctx: &Ctx,
    job: &Job,
    db: &DynamicObject,
    mut conditions: Vec<Condition>,
    status: &str,
) -> Result<()> {
    let message = format!("{} {} is in process", job.kind.ops_kind(), job.name);
    let paused = condition(
        c::PAUSED,
        status,
        c::PAUSED,
        &message,
        db.metadata.generation,
        c::now(),
    );
    c::set(&mut conditions, paused);
    write_conditions(ctx, job, db, &conditions).await
}

/// Removes `Paused` from the database (the one with UID `uid`, when given: another database
/// of the same name is not this request's to resume).
pub async fn resume(ctx: &Ctx, job: &Job, uid: Option<&str>) -> Result<()> {
    let Some(db) = get_database(ctx, job).await? else {
        return Ok(());
    };
    if uid.is_some_and(|uid| db.uid().as_deref() != Some(uid)) {
        return Ok(());
    }
    let mut conditions = database_conditions(&db);
    if c::remove(&mut conditions, c::PAUSED) {
        write_conditions(ctx, job, &db, &conditions).await?;
    }
    Ok(())
}

pub async fn resume_step(ctx: &Ctx, job: &Job) -> Result<Outcome> {
    resume(ctx, job, Some(&job.admitted()?.database_uid)).await?;
    Ok(Outcome::Done(vec![succeeded(
        job,
        c::RESUME_DATABASE,
        c::DATABASE_RESUME_SUCCEEDED,
        "resumed",
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn paused(status: &str) -> Vec<Condition> {
        vec![condition(
            c::PAUSED,
            status,
            "Paused",
            "",
            None,
            Time(jiff::Timestamp::UNIX_EPOCH),
        )]
    }

    #[test]
    fn pause_action_table() {
        use PauseAction::*;
        use PauseHandshake::*;
        let cases = [
            (vec![], Kubedb, Write(c::UNKNOWN)),
            (vec![], SelfPause, Write(c::TRUE)),
            (paused(c::UNKNOWN), Kubedb, WaitForProvisioner),
            (paused(c::UNKNOWN), SelfPause, Write(c::TRUE)),
            (paused(c::FALSE), Kubedb, Write(c::UNKNOWN)),
            (paused(c::TRUE), Kubedb, Done),
            (paused(c::TRUE), SelfPause, Done),
        ];
        for (conds, mode, want) in cases {
            assert_eq!(
                pause_action(paused_status(&conds), mode),
                want,
                "{conds:?} {mode:?}"
            );
        }
    }
}
