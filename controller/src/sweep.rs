//! Saved states nobody else will clean up (controller/DESIGN-NOTES.md, "Orphan sweep"): a
//! tenant may strip the `volops.dev/cleanup` finalizer and delete a request mid-flight, or strip
//! it from a request that just ended. The state in the controller's namespace still says what
//! was taken away: the sweep puts it back (workloads, pods, the database resumed) and deletes
//! the state. It runs every `Config::sweep_interval`, and Admit runs it for its database before
//! a new request may take that database.

use std::{future::Future, sync::Arc};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    ResourceExt,
    api::{Api, DynamicObject},
    runtime::events::{Event, EventType},
};
use tracing::{debug, info, warn};
use volops_shared::api::OpsRequestPhase;

use crate::{
    context::Ctx,
    error::{KubeContext, Result},
    saved::{DATABASE_LABEL, RequestIdentity, database_label},
    saved_store::{self, Stored},
    steps::{
        Job,
        cleanup::{self, Verdict},
    },
};

/// Sweeps now, then every `Config::sweep_interval`, until `stop`.
pub async fn run(ctx: Arc<Ctx>, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    loop {
        if let Err(e) = all(&ctx).await {
            warn!(error = %e, "sweep of saved states failed");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(ctx.config.sweep_interval) => {}
        }
    }
}

/// Where a saved state's request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// It exists and runs: its own reconciles look after its state.
    Running,
    /// It exists in a final phase: its state is left over.
    Over,
    /// It is gone (or another request has its name now).
    Gone,
}

async fn request_of(ctx: &Ctx, id: &RequestIdentity) -> Result<Request> {
    let Some(kind) = id.database_kind() else {
        return Ok(Request::Gone);
    };
    let ar = kind.ops_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &id.namespace, &ar);
    let obj = api
        .get_opt(&id.name)
        .await
        .during(|| format!("get {}", id.describe()))?;
    Ok(match obj {
        Some(o) if o.uid().as_deref() == Some(id.uid.as_str()) => {
            let phase = o
                .data
                .pointer("/status/phase")
                .and_then(|p| serde_json::from_value::<OpsRequestPhase>(p.clone()).ok());
            if phase.is_some_and(OpsRequestPhase::is_final) {
                Request::Over
            } else {
                Request::Running
            }
        }
        _ => Request::Gone,
    })
}

/// Every saved state whose request is over or gone is cleaned up.
pub async fn all(ctx: &Ctx) -> Result<()> {
    for stored in saved_store::list(ctx, None).await? {
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "a saved state cannot be read; left for an administrator");
                continue;
            }
        };
        let id = stored.state.request.clone();
        match request_of(ctx, &id).await {
            Ok(Request::Running) => {}
            Ok(_) => {
                if let Err(e) = settle(ctx, stored).await {
                    warn!(request = %id.describe(), error = %e, "cleanup of a left-over saved state failed");
                }
            }
            Err(e) => debug!(request = %id.describe(), error = %e, "request not read"),
        }
    }
    Ok(())
}

/// Admit: the saved states of other requests of the same database. One whose request is over
/// or gone is cleaned up first; one whose request runs and was admitted holds the database.
/// Why the new request must wait, if it must.
pub async fn clear_database(ctx: &Ctx, job: &Job) -> Result<Option<String>> {
    let selector = format!(
        "{DATABASE_LABEL}={}",
        database_label(job.kind, &job.namespace, &job.database)
    );
    for stored in saved_store::list(ctx, Some(&selector)).await? {
        let stored = stored?;
        let id = stored.state.request.clone();
        let same_database = id.namespace == job.namespace && id.database == job.database;
        if job.uid.as_deref() == Some(id.uid.as_str()) || !same_database {
            continue;
        }
        match request_of(ctx, &id).await? {
            Request::Running if stored.state.admitted.is_some() => {
                return Ok(Some(format!("waiting for {} to finish", id.describe())));
            }
            Request::Running => {}
            Request::Over | Request::Gone => {
                if !settle(ctx, stored).await? {
                    return Ok(Some(format!("waiting for the cleanup after {}", id.describe())));
                }
            }
        }
    }
    Ok(None)
}

/// One cleanup pass for a left-over state; true once it is cleaned up and deleted.
async fn settle(ctx: &Ctx, stored: Stored) -> Result<bool> {
    let id = stored.state.request.clone();
    let Some(mut job) = Job::orphaned(stored) else {
        // Not a kind this controller knows: nothing it could have saved.
        saved_store::delete(ctx, &id.uid).await?;
        return Ok(true);
    };
    match cleanup::pass(ctx, &mut job).await? {
        Verdict::Restored => {}
        Verdict::GaveUp(problems) => {
            for p in problems {
                publish_on_database(ctx, &job, format!("{}: {}", p.object, p.message));
            }
        }
        Verdict::Wait { reason, .. } => {
            debug!(request = %id.describe(), %reason, "sweep waits");
            return Ok(false);
        }
    }
    saved_store::delete(ctx, &id.uid).await?;
    info!(request = %id.describe(), "cleaned up after a request that is over or gone");
    Ok(true)
}

/// A Warning on the database (its request is gone): what the cleanup could not restore.
fn publish_on_database(ctx: &Ctx, job: &Job, note: String) {
    let reference = ObjectReference {
        api_version: Some(format!("{}/{}", job.kind.group(), job.kind.version())),
        kind: Some(job.kind.kind().into()),
        name: Some(job.database.clone()),
        namespace: Some(job.namespace.clone()),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "RestoreFailed".into(),
        note: Some(note),
        action: "Cleanup".into(),
        secondary: None,
    };
    let recorder = ctx.recorder.clone();
    tokio::spawn(async move {
        if let Err(e) = recorder.publish(&event, &reference).await {
            debug!(error = %e, "event not published");
        }
    });
}
