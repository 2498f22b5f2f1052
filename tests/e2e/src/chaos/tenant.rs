//! The hostile tenant among a chaos run's faults (issue 18): while requests run, it writes
//! forged saved state into their annotations (workloads and pods of its own, or its own
//! manifests under the database's names) and edits their databases; its requests carry forged
//! annotations from CREATE. A watch records every object that shows the tenant's marks: none
//! may ever exist, as the controller creates only what it saved itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use volops_shared::DatabaseKind;

use super::databases::{Db, NS};
use crate::Harness;

/// The image every forged manifest runs: an object showing it was made from a tenant's write.
pub const FORGED_IMAGE: &str = "chaos.invalid/forged:latest";

/// The tenant who owns the chaos namespace (bound to `edit` there by the harness).
pub async fn tenant_client(h: &Harness) -> crate::Result<Client> {
    h.tenant_client().await
}

/// What the tenant did.
#[derive(Clone, Debug, Default)]
pub struct TenantCounts {
    /// Forged annotations written to requests (CREATE or UPDATE) and taken by the API server.
    pub forged: Arc<AtomicUsize>,
    /// Forged writes the API server (admission) refused.
    pub refused: Arc<AtomicUsize>,
    /// Database edits taken by the API server.
    pub database_edits: Arc<AtomicUsize>,
}

impl TenantCounts {
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
}

fn hostile_pod_spec() -> Value {
    json!({"containers": [{"name": "x", "image": FORGED_IMAGE,
                           "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
           "volumes": [{"name": "root", "hostPath": {"path": "/"}}]})
}

fn workload_kind(db: &Db) -> (&'static str, &'static str) {
    let w = db.kind.workload_kind();
    (w.api_version(), w.kind())
}

fn hostile_workload(db: &Db, name: &str) -> String {
    let (api_version, kind) = workload_kind(db);
    let claim = match db.kind {
        DatabaseKind::Redis => "data".to_owned(),
        DatabaseKind::ZooKeeper => format!("{}-data", db.name),
    };
    json!({"apiVersion": api_version, "kind": kind,
           "metadata": {"name": name, "namespace": NS,
                        "labels": {"app.kubernetes.io/instance": db.name}},
           "spec": {"replicas": 1, "serviceName": format!("{}-pods", db.name),
                    "selector": {"matchLabels": {"app.kubernetes.io/instance": db.name}},
                    "template": {"metadata": {"labels": {"app.kubernetes.io/instance": db.name}},
                                 "spec": hostile_pod_spec()},
                    "volumeClaimTemplates": [{"metadata": {"name": claim},
                        "spec": {"accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}}]}})
    .to_string()
}

fn hostile_pod(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
           "spec": hostile_pod_spec()})
    .to_string()
}

/// The database's first workload and pod, as KubeDB names them.
fn first_workload(db: &Db) -> String {
    if db.workloads > 1 {
        format!("{}-shard0", db.name)
    } else {
        db.name.clone()
    }
}

/// Forged saved state for a request of `db`: a workload and a pod of the tenant's own, and
/// its own manifests under the database's first workload and pod (`n` varies the names).
pub fn forged_annotations(db: &Db, n: u64) -> BTreeMap<String, String> {
    let kind = workload_kind(db).1.to_ascii_lowercase();
    let own = format!("forged-{n}");
    let real = first_workload(db);
    BTreeMap::from([
        (
            format!("volops.dev/workload.{kind}.{own}"),
            hostile_workload(db, &own),
        ),
        (
            format!("volumeexpansion.ops.kubedb.com/{own}-0"),
            hostile_pod(&format!("{own}-0")),
        ),
        (
            format!("volops.dev/workload.{kind}.{real}"),
            hostile_workload(db, &real),
        ),
        (
            format!("volumeexpansion.ops.kubedb.com/{real}-0"),
            hostile_pod(&format!("{real}-0")),
        ),
    ])
}

/// Whether an admission or validation refusal (not an injected fault: those are 409/429/5xx).
pub fn refused(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if matches!(s.code, 400 | 403 | 422))
}

/// Until `stop`: every 50-300 ms (seeded) the tenant picks a running request and forges its
/// saved state, or edits its database (annotations and the pod template's annotations: a
/// generation change the provisioner acts on, no size or topology change).
pub async fn act(client: Client, dbs: Vec<Db>, seed: u64, counts: TenantCounts, stop: Arc<AtomicBool>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7465_6e61_6e74);
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
        let db = &dbs[rng.random_range(0..dbs.len())];
        let requests: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &db.kind.ops_resource());
        let Ok(list) = requests.list(&ListParams::default()).await else {
            continue;
        };
        let running: Vec<String> = list
            .items
            .iter()
            .filter(|r| {
                r.data.pointer("/spec/databaseRef/name").and_then(Value::as_str) == Some(db.name.as_str())
                    && !crate::wait::is_final(r)
            })
            .map(|r| r.name_any())
            .collect();
        let Some(name) = running.get(rng.random_range(0..running.len().max(1))) else {
            continue;
        };
        n += 1;
        if rng.random_bool(0.6) {
            let patch = json!({"metadata": {"annotations": forged_annotations(db, n)}});
            match requests
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => counts.forged.fetch_add(1, Ordering::SeqCst),
                Err(e) if refused(&e) => counts.refused.fetch_add(1, Ordering::SeqCst),
                Err(_) => 0,
            };
        } else {
            let databases: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), NS, &db.kind.database_resource());
            let edit = json!({"metadata": {"annotations": {"chaos.volops.dev/edit": n.to_string()}},
                              "spec": {"podTemplate": {"metadata": {"annotations": {"chaos.volops.dev/edit": n.to_string()}}}}});
            if databases
                .patch(&db.name, &PatchParams::default(), &Patch::Merge(&edit))
                .await
                .is_ok()
            {
                counts.database_edits.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Every pod, StatefulSet or PetSet in the namespace that ever carried the tenant's marks (its
/// image, a hostPath volume, a `forged-` name), from watches started before the run.
pub fn watch_forged_objects(
    client: Client,
) -> (Arc<Mutex<BTreeSet<String>>>, Vec<tokio::task::JoinHandle<()>>) {
    let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut tasks = Vec::new();
    let resources = [
        ("pod", ApiResource::erase::<Pod>(&())),
        ("statefulset", ApiResource::erase::<StatefulSet>(&())),
        (
            "petset",
            ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apps.k8s.appscode.com", "v1", "PetSet"),
                "petsets",
            ),
        ),
    ];
    for (what, ar) in resources {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = std::pin::pin!(
                watcher(api, watcher::Config::default())
                    .default_backoff()
                    .applied_objects()
            );
            while let Some(ev) = events.next().await {
                let Ok(o) = ev else { continue };
                let spec = o.data.get("spec").map(Value::to_string).unwrap_or_default();
                if o.name_any().starts_with("forged-")
                    || spec.contains(FORGED_IMAGE)
                    || spec.contains("hostPath")
                {
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(format!("{what} {}", o.name_any()));
                }
            }
        }));
    }
    (seen, tasks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::databases::databases;

    #[test]
    fn forged_annotations_name_the_tenant_s_objects_and_the_database_s_own() {
        for db in databases(1) {
            let a = forged_annotations(&db, 7);
            assert_eq!(a.len(), 4, "{}", db.name);
            let first = first_workload(&db);
            assert!(a.keys().any(|k| k.ends_with(&format!(".{first}"))), "{a:?}");
            assert!(a.keys().any(|k| k.ends_with("/forged-7-0")));
            for v in a.values() {
                assert!(v.contains(FORGED_IMAGE) && v.contains("hostPath"));
            }
        }
    }
}
