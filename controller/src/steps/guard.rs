//! What every step after Admit checks first: the request is still the one admitted (the
//! webhook may have been bypassed: a spec changed afterwards is never carried out), and its
//! database is still the one admitted (not deleted, not created again under the same name).

use kube::ResourceExt;

use super::{Job, get_database};
use crate::{context::Ctx, error::Result};

/// Why the request must fail before its next step, if it must.
pub async fn check(ctx: &Ctx, job: &Job) -> Result<Option<String>> {
    let Some(state) = job.saved.as_ref().map(|s| &s.state) else {
        return Ok(Some(format!(
            "{} has no saved state in the controller's namespace: it was not admitted by this controller \
             (a request started by a volops release that kept its state on the request cannot be carried on)",
            job.describe()
        )));
    };
    let Some(admitted) = &state.admitted else {
        return Ok(Some(format!(
            "{} was not admitted by this controller",
            job.describe()
        )));
    };
    if job.generation != Some(admitted.generation) {
        return Ok(Some(format!(
            "the request's spec changed after it was admitted (generation {} admitted, {} now): volops carries out \
             only what it admitted ({} {}); create a new request for another size",
            admitted.generation,
            job.generation
                .map_or_else(|| "none".to_owned(), |g| g.to_string()),
            admitted.mode.as_str(),
            admitted.target
        )));
    }
    database_gone(ctx, job).await
}

/// Why the admitted database is gone, if it is: deleted, being deleted, or replaced by another
/// of the same name. The cached copy answers when it shows the database; otherwise the API
/// server.
pub async fn database_gone(ctx: &Ctx, job: &Job) -> Result<Option<String>> {
    let Some(admitted) = job.saved.as_ref().and_then(|s| s.state.admitted.as_ref()) else {
        return Ok(None);
    };
    let fine = |db: &kube::api::DynamicObject| {
        db.uid().as_deref() == Some(admitted.database_uid.as_str())
            && db.metadata.deletion_timestamp.is_none()
    };
    let cached = ctx
        .caches(job.kind)
        .and_then(|c| c.database(&job.namespace, &job.database));
    if cached.is_some_and(|db| db.uid.as_deref() == Some(admitted.database_uid.as_str()) && !db.deleting) {
        return Ok(None);
    }
    let what = job.describe_database();
    Ok(match get_database(ctx, job).await? {
        Some(db) if fine(&db) => None,
        Some(db) if db.metadata.deletion_timestamp.is_some() => {
            Some(format!("{what} no longer exists: it is being deleted"))
        }
        Some(db) => Some(format!(
            "{what} no longer exists: it was deleted and created again (uid {} admitted, {} now)",
            admitted.database_uid,
            db.uid().unwrap_or_default()
        )),
        None => Some(format!(
            "{what} no longer exists: it was deleted while the request ran"
        )),
    })
}
