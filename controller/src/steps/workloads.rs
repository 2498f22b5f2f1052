//! Orphan-delete the workloads (each verified as the database's and saved first, with the
//! UIDs of the pods it controls) and recreate them from the saved manifests with the new
//! claim size; the new workload adopts the pods and PVCs.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, PostParams, Preconditions, PropagationPolicy},
};
use volops_shared::{
    Workload, WorkloadKind,
    conditions::{self as c, condition},
};

use super::{Job, Outcome, SOON, database_workloads};
use crate::{
    caches::Cached,
    context::Ctx,
    error::{Error, KubeContext, Result},
    ownership::{DatabaseId, controlled_by, restorable_workload, verify_workload},
    saved::{SavedPod, SavedWorkload},
};

/// One workload as a step sees it: its kind and object, or None when it does not exist.
pub type Live = Option<(WorkloadKind, Arc<DynamicObject>)>;

/// The workload of this name, looking at `kind` first and then the other one. The caches
/// answer where they can; the API server is asked when a cache is not synced, or when
/// `confirm_absence` (the caller would act on a missing workload that the cache may only not
/// have seen yet).
pub async fn find(
    ctx: &Ctx,
    job: &Job,
    name: &str,
    kind: WorkloadKind,
    confirm_absence: bool,
) -> Result<Live> {
    let caches = ctx.caches(job.kind);
    let mut unknown = false;
    for kind in [kind, kind.other()] {
        match caches
            .as_ref()
            .map_or(Cached::Unknown, |c| c.workload(kind, &job.namespace, name))
        {
            Cached::Present(obj) => return Ok(Some((kind, obj))),
            Cached::Absent => {}
            Cached::Unknown => unknown = true,
        }
    }
    if !unknown && !confirm_absence {
        return Ok(None);
    }
    for kind in [kind, kind.other()] {
        match ctx.workload_api(kind, &job.namespace).get_opt(name).await {
            Ok(Some(obj)) => return Ok(Some((kind, Arc::new(obj)))),
            Ok(None) => {}
            // The PetSet CRD may not be installed.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e).during(|| format!("get {} {}/{name}", kind.kind(), job.namespace)),
        }
    }
    Ok(None)
}

/// Orphan-deletes exactly the object verified (UID precondition).
async fn orphan_delete(ctx: &Ctx, job: &Job, kind: WorkloadKind, name: &str, uid: &str) -> Result<()> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match ctx.workload_api(kind, &job.namespace).delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if matches!(crate::error::code_of(&e), Some(404)) => Ok(()),
        Err(e) => Err(e).during(|| format!("orphan-delete {} {name}", kind.kind())),
    }
}

/// The UIDs of the pods the verified workloads control: the only pods the request may later
/// delete (Offline) or, if the database goes, clean up.
async fn controlled_pods(ctx: &Ctx, job: &Job, workloads: &[SavedWorkload]) -> Result<Vec<(String, String)>> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &job.namespace);
    let list = pods
        .list(&ListParams::default().labels(&job.kind.selector(&job.database)))
        .await
        .during(|| format!("list pods of {}", job.database))?;
    Ok(list
        .items
        .iter()
        .filter_map(|p| {
            let refs = p.metadata.owner_references.as_deref();
            let owner = workloads
                .iter()
                .find(|w| controlled_by(refs, w.kind.kind(), &w.uid))?;
            let name = p.name_any();
            owner
                .pods()
                .any(|n| n == name)
                .then(|| (name, p.uid().unwrap_or_default()))
        })
        .collect())
}

/// Verifies and saves every workload (one write, before any delete), then orphan-deletes
/// them all at once; done when none is left.
pub async fn orphan(ctx: &Ctx, job: &mut Job) -> Result<Outcome> {
    let workloads: Vec<Workload> = match database_workloads(ctx, job).await? {
        Ok(w) => w,
        Err(reason) => return Ok(Outcome::Fail(reason)),
    };
    let (live, to_save) = match verify(ctx, job, &workloads).await? {
        Ok(verified) => verified,
        Err(refused) => return Ok(Outcome::Fail(refused)),
    };
    if !to_save.is_empty() {
        let pods = controlled_pods(ctx, job, &to_save).await?;
        let state = job.saved_mut(ctx).await?;
        for (name, uid) in pods {
            state.pods.entry(name).or_insert(SavedPod {
                uid: Some(uid),
                ..SavedPod::default()
            });
        }
        state.workloads.extend(to_save);
        if let Err(e @ Error::Saved { .. }) = job.save(ctx).await {
            // Too large to save: nothing was deleted yet.
            return Ok(Outcome::Fail(e.to_string()));
        }
    }
    delete_live(ctx, job, &workloads, &live).await?;
    let left = live.iter().filter(|l| l.is_some()).count();
    if left > 0 {
        return Ok(Outcome::wait(
            format!("waiting for {left} workloads to be deleted"),
            SOON,
        ));
    }
    let used_kind = job
        .state()?
        .workloads
        .first()
        .map_or(job.kind.workload_kind(), |w| w.kind);
    Ok(Outcome::Done(vec![condition(
        used_kind.orphan_condition(),
        c::TRUE,
        used_kind.orphan_condition(),
        &format!(
            "successfully deleted the {} with orphan propagation policy",
            used_kind.message_plural()
        ),
        job.generation,
        c::now(),
    )]))
}

/// Each workload as found now, and those not saved yet once verified to belong to the
/// database; Err(reason) when one is another object than the one saved, fails its
/// verification, or does not exist.
async fn verify(
    ctx: &Ctx,
    job: &Job,
    workloads: &[Workload],
) -> Result<std::result::Result<(Vec<Live>, Vec<SavedWorkload>), String>> {
    let db = job.database_id()?;
    let state = job.state()?;
    let mut live = Vec::with_capacity(workloads.len());
    let mut to_save: Vec<SavedWorkload> = Vec::new();
    for w in workloads {
        let saved = state.workload(&w.name);
        let found = find(ctx, job, &w.name, w.kind, saved.is_none()).await?;
        match (saved, &found) {
            // Saved and deleted, or saved and this very object still there.
            (Some(_), None) => {}
            (Some(s), Some((_, obj))) if obj.uid().as_deref() == Some(s.uid.as_str()) => {}
            (Some(s), Some((kind, obj))) => {
                return Ok(Err(format!(
                    "{} {}/{} is another object than the one saved (uid {} saved, {} now); refusing to touch it",
                    kind.kind(),
                    job.namespace,
                    w.name,
                    s.uid,
                    obj.uid().unwrap_or_default()
                )));
            }
            (None, Some((kind, obj))) => {
                let Some(full) = with_spec(ctx, job, *kind, obj).await? else {
                    return Ok(Err(missing(job, w)));
                };
                match verify_workload(*kind, &full, &w.claim_template, &db) {
                    Ok(saved) => to_save.push(saved),
                    Err(refused) => return Ok(Err(refused.0)),
                }
            }
            (None, None) => return Ok(Err(missing(job, w))),
        }
        live.push(found);
    }
    Ok(Ok((live, to_save)))
}

fn missing(job: &Job, w: &Workload) -> String {
    format!(
        "{} {}/{} of {} {} does not exist",
        w.kind.kind(),
        job.namespace,
        w.name,
        job.kind.kind(),
        job.database
    )
}

/// The workload with its spec: the cache keeps only metadata, so a cached one is read as it
/// is now (verified like any other; None when it is gone).
async fn with_spec(
    ctx: &Ctx,
    job: &Job,
    kind: WorkloadKind,
    obj: &Arc<DynamicObject>,
) -> Result<Option<Arc<DynamicObject>>> {
    if !obj.data.is_null() {
        return Ok(Some(obj.clone()));
    }
    let name = obj.name_any();
    let full = ctx
        .workload_api(kind, &job.namespace)
        .get_opt(&name)
        .await
        .during(|| format!("get {} {}/{name}", kind.kind(), job.namespace))?;
    Ok(full.map(Arc::new))
}

/// Deletes, orphaning their pods, the saved workloads still there and not going yet. A delete
/// the cache does not show yet is sent again: the UID precondition keeps it to the object
/// verified, and a 404 counts as done.
async fn delete_live(ctx: &Ctx, job: &Job, workloads: &[Workload], live: &[Live]) -> Result<()> {
    let state = job.state()?;
    let to_delete: Vec<(WorkloadKind, &str, String)> = workloads
        .iter()
        .zip(live)
        .filter_map(|(w, l)| match l {
            Some((kind, obj)) if obj.metadata.deletion_timestamp.is_none() => {
                let uid = state.workload(&w.name)?.uid.clone();
                Some((*kind, w.name.as_str(), uid))
            }
            _ => None,
        })
        .collect();
    futures::future::try_join_all(
        to_delete
            .iter()
            .map(|(kind, name, uid)| orphan_delete(ctx, job, *kind, name, uid)),
    )
    .await?;
    Ok(())
}

/// How one saved workload stands when it should be there.
pub enum Presence {
    /// It is there, controlled by the database.
    Back,
    /// Missing: create it.
    Missing,
    /// Still going away (the orphan delete is not through yet).
    Leaving,
    /// Another object holds its name: never touched, reported.
    Foreign(String),
}

/// Where a saved workload stands (the cache answers when synced; a creation it has not seen
/// yet answers 409 on create, which is success).
pub async fn presence(ctx: &Ctx, job: &Job, w: &SavedWorkload, db: &DatabaseId) -> Result<Presence> {
    Ok(match find(ctx, job, &w.name, w.kind, false).await? {
        None => Presence::Missing,
        Some((_, obj)) if obj.metadata.deletion_timestamp.is_some() => Presence::Leaving,
        Some((_, obj))
            if controlled_by(obj.metadata.owner_references.as_deref(), db.kind.kind(), &db.uid) =>
        {
            Presence::Back
        }
        Some((kind, _)) => Presence::Foreign(format!(
            "{} {}/{} exists and is not controlled by {} {}/{}; it is left as it is",
            kind.kind(),
            job.namespace,
            w.name,
            db.kind.kind(),
            db.namespace,
            db.name
        )),
    })
}

/// Creates one saved workload with `size` in its claim template (exists already is fine).
pub async fn create(ctx: &Ctx, job: &Job, w: &SavedWorkload, size: &str, db: &DatabaseId) -> Result<()> {
    let manifest = restorable_workload(w, size, db).map_err(|e| Error::Invalid(e.0))?;
    let obj: DynamicObject = serde_json::from_value(manifest).map_err(|source| Error::Json {
        what: format!("saved {} {}", w.kind.kind(), w.name),
        source,
    })?;
    match ctx
        .workload_api(w.kind, &job.namespace)
        .create(&PostParams::default(), &obj)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if matches!(crate::error::code_of(&e), Some(409)) => Ok(()),
        Err(e) => Err(e).during(|| format!("create {} {}/{}", w.kind.kind(), job.namespace, w.name)),
    }
}

/// Recreates every saved workload with the admitted size (all at once).
pub async fn recreate(ctx: &Ctx, job: &Job) -> Result<Outcome> {
    let target = job.target()?;
    let db = job.database_id()?;
    let state = job.state()?;
    let mut missing = Vec::new();
    for w in &state.workloads {
        match presence(ctx, job, w, &db).await? {
            Presence::Back => {}
            Presence::Foreign(why) => return Ok(Outcome::Fail(why)),
            Presence::Leaving => {
                return Ok(Outcome::wait(
                    format!("waiting for {} {} to be deleted", w.kind.kind(), w.name),
                    SOON,
                ));
            }
            Presence::Missing => missing.push(w),
        }
    }
    futures::future::try_join_all(missing.iter().map(|w| create(ctx, job, w, target.as_str(), &db))).await?;
    let kind = state
        .workloads
        .first()
        .map_or(job.kind.workload_kind(), |w| w.kind);
    // Every workload is back or created now (a create that found it there is success):
    // KubeDB's UpdatePetSets and ReadyPetSets (or the StatefulSet names) at once.
    let now = c::now();
    Ok(Outcome::Done(vec![
        condition(
            kind.update_condition(),
            c::TRUE,
            kind.update_condition(),
            &format!("successfully reconciled the {} resources", job.kind.kind()),
            job.generation,
            now.clone(),
        ),
        condition(
            kind.ready_condition(),
            c::TRUE,
            kind.ready_condition(),
            &format!("{} is recreated", kind.kind()),
            job.generation,
            now,
        ),
    ]))
}
