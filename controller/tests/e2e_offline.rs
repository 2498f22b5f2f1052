//! End to end in the sandbox: an Offline ZooKeeper expansion, one pod at a time.

mod support;

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, ResourceExt,
    api::{ListParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};
use support::*;
use volops_controller::Metrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_zookeeper_expansion_restarts_one_pod_at_a_time() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "slow", "offline").await;
    let zk = database(&client, "db", "ZooKeeper", "zk", "slow").await;

    // Track, from a watch, the most pods of the ensemble missing at any moment.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "db");
    let max_missing = Arc::new(AtomicUsize::new(0));
    let seen = max_missing.clone();
    let watch = watcher(
        pods.clone(),
        watcher::Config::default().labels("app.kubernetes.io/instance=zk"),
    );
    let tracker = tokio::spawn(async move {
        let mut present = BTreeSet::new();
        let mut listed = false;
        let mut events = std::pin::pin!(watch.default_backoff());
        while let Some(Ok(ev)) = events.next().await {
            match ev {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    present.insert(p.name_any());
                }
                watcher::Event::Delete(p) => {
                    present.remove(&p.name_any());
                }
                watcher::Event::InitDone => listed = true,
                watcher::Event::Init => {}
            }
            // Count only once the initial list is complete.
            if !listed {
                continue;
            }
            seen.fetch_max(3usize.saturating_sub(present.len()), Ordering::SeqCst);
        }
    });
    let uids_before: BTreeSet<String> = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=zk"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.uid().unwrap())
        .collect();

    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&client, "db", "ZooKeeperOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("ZooKeeperOpsRequest", "grow", "zk", "Offline", "3Gi", json!({})),
    )
    .await
    .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data["status"]
    );
    let _ = stop.send(());
    task.await.unwrap();
    tracker.abort();

    assert_eq!(
        max_missing.load(Ordering::SeqCst),
        1,
        "exactly one pod was missing at a time"
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    for j in 0..3 {
        let pvc = pvcs.get(&format!("zk-data-zk-{j}")).await.unwrap();
        assert_eq!(pvc.status.unwrap().capacity.unwrap()["storage"].0, "3Gi");
        let pod = pods.get(&format!("zk-{j}")).await.expect("pod back");
        assert!(
            !uids_before.contains(&pod.uid().unwrap()),
            "pod zk-{j} was recreated"
        );
    }
    let pets = dynamic(&client, "db", "apps.k8s.appscode.com", "v1", "PetSet", "petsets");
    let pet = pets.get("zk").await.expect("petset recreated");
    assert_eq!(
        pet.data
            .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage"),
        Some(&Value::from("3Gi"))
    );
    let db = zk.get("zk").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("3Gi"));
    assert!(paused_conditions(&db).is_empty());
    assert!(
        done.annotations()
            .keys()
            .all(|k| !k.starts_with("volumeexpansion.ops.kubedb.com/"))
    );
    sb.shutdown().await.unwrap();
}
