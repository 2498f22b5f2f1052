//! End to end in the sandbox: `pvc_parallelism` caps the PVCs of one Online request that are
//! resizing at once (seen from a PVC watch); without it they all resize together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeSet,
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;
use support::*;
use volops_controller::{Config, Metrics, PauseHandshake};
use volops_shared::Quantity;

/// Patched to the target (request) but not grown to it (capacity): in flight.
fn in_flight(pvc: &PersistentVolumeClaim, target: &Quantity) -> bool {
    let get = |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        q.and_then(|q| Quantity::parse(&q.0).ok())
    };
    let request = get(pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage")));
    let capacity = get(pvc
        .status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage")));
    request.is_some_and(|r| r >= *target) && capacity.is_none_or(|c| c < *target)
}

/// Records, from a watch, the most PVCs of database `db` in flight to `target` at once.
fn track_in_flight(
    client: &kube::Client,
    db: &str,
    target: &str,
) -> (Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let target = Quantity::parse(target).unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let stream = watcher(
        pvcs,
        watcher::Config::default().labels(&format!("app.kubernetes.io/instance={db}")),
    )
    .default_backoff();
    let max = Arc::new(AtomicUsize::new(0));
    let seen = max.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut flying = BTreeSet::new();
        while let Some(Ok(ev)) = stream.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    if in_flight(&p, &target) {
                        flying.insert(p.name_any());
                    } else {
                        flying.remove(&p.name_any());
                    }
                }
                watcher::Event::Delete(p) => {
                    flying.remove(&p.name_any());
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
            seen.fetch_max(flying.len(), Ordering::SeqCst);
        }
    });
    (max, task)
}

/// Runs one Online request for `db` with a controller of the given parallelism; returns the
/// most PVCs in flight at once.
async fn expand(client: &kube::Client, db: &str, parallelism: Option<NonZeroUsize>) -> usize {
    let (max, tracker) = track_in_flight(client, db, "2Gi");
    let config = Config {
        pause_handshake: PauseHandshake::Kubedb,
        pvc_parallelism: parallelism,
        ..Config::default()
    };
    let (stop, task) = start_controller_with(client.clone(), Arc::new(Metrics::default()), config);
    let ops = ops_api(client, "db", "RedisOpsRequest");
    let name = format!("grow-{db}");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", &name, db, "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let done = wait_final(&ops, &name).await;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data["status"]
    );
    let _ = stop.send(());
    task.await.unwrap();
    tracker.abort();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let list = pvcs
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={db}")))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 6);
    for pvc in &list.items {
        let cap = &pvc.status.as_ref().unwrap().capacity.as_ref().unwrap()["storage"].0;
        assert_eq!(cap, "2Gi", "{}", pvc.name_any());
    }
    max.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pvc_parallelism_one_resizes_one_pvc_at_a_time() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    // Slow enough resizes that concurrent ones overlap in the watch.
    storage_class(&client, "par", "online", 100).await;
    database(&client, "db", "Cluster", "one", "par").await;
    database(&client, "db", "Cluster", "all", "par").await;

    let one = expand(&client, "one", NonZeroUsize::new(1)).await;
    assert_eq!(one, 1, "parallelism 1: exactly one PVC in flight at a time");
    let all = expand(&client, "all", None).await;
    assert!(
        all > 1,
        "unlimited: PVCs resize together (saw at most {all} at once)"
    );
    sb.shutdown().await.unwrap();
}
