//! One database's rounds of expansions (2Gi, 3Gi, ...) under chaos, each followed by the
//! cleanup check.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Client;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::json;
use volops_shared::DatabaseKind;

use super::databases::{Db, NS};
use super::invariants::wait_clean;
use super::tenant::{TenantCounts, forged_annotations, refused};
use crate::wait::{is_final, phase};

/// Deadline of one request (its steps time out after 30 s each).
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);

/// How one request ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub db: String,
    pub request: String,
    pub size: String,
    pub phase: String,
    /// The `Failed` condition's message, if any.
    pub reason: String,
}

/// When a database stops getting new rounds.
#[derive(Clone, Debug)]
pub struct Quota {
    pub kills: Arc<AtomicUsize>,
    pub min_kills: usize,
    pub min_rounds: usize,
}

fn ops_request(db: &Db, name: &str, size: &str) -> Result<DynamicObject, String> {
    let (kind, field) = match db.kind {
        DatabaseKind::Redis => ("RedisOpsRequest", "redis"),
        DatabaseKind::ZooKeeper => ("ZooKeeperOpsRequest", "node"),
    };
    serde_json::from_value(json!({
        "apiVersion": "ops.kubedb.com/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db.name}, "timeout": "30s",
                 "volumeExpansion": {"mode": db.mode, field: size}}
    }))
    .map_err(|e| format!("ops request {name}: {e}"))
}

/// Retries `f` (API faults are expected) until it succeeds or the deadline passes.
async fn retry<T, F, Fut>(what: &str, deadline: Instant, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(format!("{what}: gave up; last error: {e}")),
            // Injected faults clear on the next try; keep retries cheap.
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// The error for a database the driver gave up on, with what explains it: the earlier
/// outcomes and each claim's request, capacity and conditions as they are now.
async fn gave_up(client: &Client, db: &Db, error: String, out: &[Outcome]) -> String {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    let claims = match pvcs.list(&ListParams::default().labels(&db.selector())).await {
        Ok(list) => list
            .items
            .iter()
            .map(|p| {
                let spec = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref());
                let status = p.status.as_ref();
                format!(
                    "{} request={:?} capacity={:?} conditions={:?}",
                    p.name_any(),
                    spec.and_then(|r| r.get("storage")).map(|q| &q.0),
                    status
                        .and_then(|s| s.capacity.as_ref())
                        .and_then(|c| c.get("storage"))
                        .map(|q| &q.0),
                    status
                        .and_then(|s| s.conditions.as_ref())
                        .map(|cs| cs.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>())
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("(listing the claims failed: {e})"),
    };
    format!("{error}; earlier outcomes: {out:?}; claims now: {claims}")
}

/// Runs rounds until at least `min_rounds` are done and the kill loop has reached its quota
/// (or the database's own limit). The tenant creates the requests, every other one with forged
/// saved state in its annotations (created without them if admission refuses them). An `Err`
/// is an invariant violation.
pub async fn drive(
    client: Client,
    tenant: Client,
    db: Db,
    quota: Quota,
    counts: TenantCounts,
) -> Result<Vec<Outcome>, String> {
    let api: Api<DynamicObject> = Api::namespaced_with(tenant, NS, &db.kind.ops_resource());
    let mut out = Vec::new();
    for round in 1usize.. {
        let enough_kills = quota.kills.load(Ordering::SeqCst) >= quota.min_kills;
        if round > db.max_rounds || (round > quota.min_rounds && enough_kills) {
            break;
        }
        let (name, size) = (format!("{}-r{round}", db.name), format!("{}Gi", round + 1));
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let req = ops_request(&db, &name, &size)?;
        let mut forged = req.clone();
        forged.metadata.annotations = Some(forged_annotations(&db, round as u64));
        let mut forge = round % 2 == 1;
        let created = loop {
            let body = if forge { &forged } else { &req };
            match api.create(&PostParams::default(), body).await {
                Ok(_) => {
                    if forge {
                        counts.forged.fetch_add(1, Ordering::SeqCst);
                    }
                    break Ok(());
                }
                Err(kube::Error::Api(e)) if e.reason == "AlreadyExists" => break Ok(()),
                Err(e) if forge && refused(&e) => {
                    counts.refused.fetch_add(1, Ordering::SeqCst);
                    forge = false;
                }
                Err(e) if Instant::now() >= deadline => {
                    break Err(format!("creating {name}: gave up; last error: {e}"));
                }
                // Injected faults clear on the next try; keep retries cheap.
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        };
        if let Err(e) = created {
            return Err(gave_up(&client, &db, e, &out).await);
        }
        let done = retry(&format!("waiting for {name} to finish"), deadline, || async {
            match api.get(&name).await {
                Ok(o) if is_final(&o) => Ok(o),
                Ok(o) => Err(format!("phase {:?}", phase(&o))),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        let done = match done {
            Ok(d) => d,
            Err(e) => return Err(gave_up(&client, &db, e, &out).await),
        };
        let outcome = Outcome {
            db: db.name.clone(),
            request: name.clone(),
            size,
            phase: phase(&done).unwrap_or_default().to_owned(),
            // KubeDB's failure shape: `VolumeExpansion` with reason Failed.
            reason: done.data["status"]["conditions"]
                .as_array()
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c["type"] == "VolumeExpansion" && c["reason"] == "Failed")
                })
                .map(|c| c["message"].to_string())
                .unwrap_or_default(),
        };
        if !["Successful", "Failed"].contains(&outcome.phase.as_str()) {
            return Err(format!("{name} ended {}: {outcome:?}", outcome.phase));
        }
        if let Some(want) = db.expect
            && outcome.phase != want
        {
            return Err(format!(
                "{name} ended {}, expected {want}: {outcome:?}",
                outcome.phase
            ));
        }
        wait_clean(&client, &db, Instant::now() + Duration::from_secs(30))
            .await
            .map_err(|e| {
                // The request's conditions say which step failed and what its cleanup reported.
                let conditions: Vec<String> = done.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("{}={} {}: {}", c["type"], c["status"], c["reason"], c["message"]))
                    .collect();
                format!(
                    "after {name} ({}): not cleaned up: {e}; its conditions: {conditions:?}",
                    outcome.phase
                )
            })?;
        out.push(outcome);
    }
    Ok(out)
}
