//! What a chaos run checks while it runs and at the end: the database cleaned up after every
//! request, and no PVC ever asking for or reaching more than its largest target.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use volops_shared::{DatabaseKind, Quantity};

use super::databases::{Db, NS};

/// Bytes of a quantity (unparsable counts as infinitely large, so it is never hidden).
pub fn bytes(q: &str) -> i128 {
    Quantity::parse(q).map(|q| q.bytes_ceil()).unwrap_or(i128::MAX)
}

/// One look at the database: not paused, its workloads there, every pod present.
async fn clean_now(client: &Client, db: &Db) -> Result<(), String> {
    let dbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &db.kind.database_resource());
    let workloads: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &db.kind.workload_kind().resource());
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let lp = ListParams::default().labels(&db.selector());
    let d = dbs.get(&db.name).await.map_err(|e| e.to_string())?;
    let conditions = d.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if conditions.iter().any(|c| c["type"] == "Paused") {
        return Err(format!("{} is paused", db.name));
    }
    let w = workloads.list(&lp).await.map_err(|e| e.to_string())?.items;
    let live = w
        .iter()
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .count();
    if live != db.workloads {
        let seen: Vec<String> = w
            .iter()
            .map(|o| {
                format!(
                    "{} deletionTimestamp={:?} finalizers={:?}",
                    o.name_any(),
                    o.metadata.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
                    o.finalizers()
                )
            })
            .collect();
        return Err(format!(
            "{}: {live} live workloads, want {}: {seen:?}",
            db.name, db.workloads
        ));
    }
    let p = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
    let present = p
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    if present != db.pods {
        return Err(format!("{}: {present} pods, want {}", db.name, db.pods));
    }
    Ok(())
}

/// Waits until the database is cleaned up; the problem still seen at the deadline otherwise.
pub async fn wait_clean(client: &Client, db: &Db, deadline: Instant) -> Result<(), String> {
    loop {
        match clean_now(client, db).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// What is left over once every request ended (waiting up to `deadline`): a request that is
/// not final or keeps a finalizer, a saved state of the controller's.
pub async fn left_over(client: &Client, deadline: Instant) -> Vec<String> {
    loop {
        let mut found = Vec::new();
        for kind in [DatabaseKind::Redis, DatabaseKind::ZooKeeper] {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &kind.ops_resource());
            match api.list(&ListParams::default()).await {
                Ok(list) => {
                    for r in &list.items {
                        if !crate::wait::is_final(r) {
                            found.push(format!("{} {} is not final", kind.ops_kind(), r.name_any()));
                        }
                        if !r.finalizers().is_empty() {
                            found.push(format!(
                                "{} {} keeps finalizers {:?}",
                                kind.ops_kind(),
                                r.name_any(),
                                r.finalizers()
                            ));
                        }
                    }
                }
                Err(e) => found.push(format!("listing {}: {e}", kind.ops_plural())),
            }
        }
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), volops_controller::DEFAULT_STATE_NAMESPACE);
        let saved = format!(
            "app.kubernetes.io/component={}",
            volops_controller::saved::COMPONENT
        );
        match secrets.list(&ListParams::default().labels(&saved)).await {
            Ok(list) => found.extend(
                list.items
                    .iter()
                    .map(|s| format!("saved state {} is left over", s.name_any())),
            ),
            Err(e) => found.push(format!("listing saved states: {e}")),
        }
        if found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Per PVC: its database and the largest request or capacity ever seen, in bytes.
pub type PvcSizes = Arc<Mutex<BTreeMap<String, (String, i128)>>>;

/// Records per PVC the largest request and capacity ever seen, from a watch.
pub fn track_pvc_sizes(client: Client) -> (PvcSizes, tokio::task::JoinHandle<()>) {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, NS);
    let max: PvcSizes = Arc::default();
    let m = max.clone();
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(
            watcher(pvcs, watcher::Config::default())
                .default_backoff()
                .applied_objects()
        );
        while let Some(ev) = s.next().await {
            let Ok(p) = ev else { continue };
            let db = p
                .labels()
                .get("app.kubernetes.io/instance")
                .cloned()
                .unwrap_or_default();
            let request = p
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .map(|q| bytes(&q.0));
            let capacity = p
                .status
                .as_ref()
                .and_then(|s| s.capacity.as_ref())
                .and_then(|c| c.get("storage"))
                .map(|q| bytes(&q.0));
            let seen = request.into_iter().chain(capacity).max().unwrap_or(0);
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            let e = g.entry(p.name_any()).or_insert((db, 0));
            e.1 = e.1.max(seen);
        }
    });
    (max, task)
}

/// PVCs whose largest size seen is past the largest target of their database.
pub fn pvcs_past_target(
    seen: &BTreeMap<String, (String, i128)>,
    targets: &BTreeMap<String, i128>,
) -> Vec<String> {
    seen.iter()
        .filter_map(|(pvc, (db, max))| {
            let target = targets.get(db).copied().unwrap_or(0);
            (*max > target)
                .then(|| format!("PVC {pvc} of {db} reached {max} bytes, past the largest target {target}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pvc_past_its_largest_target_is_reported() {
        let gi = |n: i128| n << 30;
        let seen: BTreeMap<String, (String, i128)> = [
            ("data-a-0".to_owned(), ("a".to_owned(), gi(3))),
            ("data-b-0".to_owned(), ("b".to_owned(), gi(4))),
        ]
        .into();
        let targets: BTreeMap<String, i128> = [("a".to_owned(), gi(3)), ("b".to_owned(), gi(3))].into();
        let past = pvcs_past_target(&seen, &targets);
        assert_eq!(past.len(), 1);
        assert!(past[0].starts_with("PVC data-b-0 of b"), "{past:?}");
        assert_eq!(bytes("2Gi"), gi(2));
        assert_eq!(bytes("nonsense"), i128::MAX);
    }
}
