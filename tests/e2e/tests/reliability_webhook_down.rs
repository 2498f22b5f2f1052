//! The webhook unavailable. With failurePolicy Fail the API server refuses an ops request when
//! the webhook cannot be reached (nothing stored); a request that breaks a rule, created
//! while no webhook was registered, is still refused by the controller (it re-checks the rules
//! at Admit) without pausing the database or touching a PVC or workload; and (issue 18,
//! finding 3) the controller never needs the webhook: down after the orphan step, it still
//! finishes one request and rolls another back.

#![allow(clippy::unwrap_used)] // test code: helpers outside #[test] fns

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use volops_e2e::wait::{phase, wait_final, wait_for, wait_ready};
use volops_e2e::{Harness, HarnessOptions, repo_root};
use volops_shared::{DatabaseKind, WorkloadKind};

const NS: &str = "demo";
const DB: &str = "redis-standalone";
const SELECTOR: &str = "app.kubernetes.io/instance=redis-standalone";

/// A harness without the controller, with `examples/redis-standalone.yaml` Ready and its PVC
/// Bound.
async fn standalone_redis() -> Harness {
    let h = Harness::start(HarnessOptions {
        start_controller: false,
        ..HarnessOptions::default()
    })
    .await
    .unwrap();
    for f in ["namespace.yaml", "storageclasses.yaml", "redis-standalone.yaml"] {
        h.apply_file(&repo_root().join("examples").join(f)).await.unwrap();
    }
    wait_ready(&h.databases(DatabaseKind::Redis, NS), DB, h.timeout())
        .await
        .unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    let pvc = format!("data-{DB}-0");
    wait_for(
        &pvcs,
        &pvc,
        "PVC Bound",
        h.timeout(),
        |p: &PersistentVolumeClaim| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"),
    )
    .await
    .unwrap();
    h
}

fn grow_request(name: &str, size: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": "VolumeExpansion", "databaseRef": {"name": DB},
                 "volumeExpansion": {"mode": "Online", "redis": size}}
    }))
    .unwrap()
}

/// A loopback address where nothing listens (a stopped webhook Pod behind its Service).
fn dead_address() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policy_fail_refuses_requests_while_the_webhook_is_down() {
    let h = standalone_redis().await;
    let ops = h.ops_requests(DatabaseKind::Redis, NS);
    let dead = dead_address();
    h.sandbox()
        .set_service_resolver(Arc::new(move |_: &str, _: &str, _: u16| Some(dead)));

    let err = ops
        .create(&PostParams::default(), &grow_request("while-down", "2Gi"))
        .await
        .expect_err("the API server must refuse while the webhook is down");
    let text = err.to_string();
    println!("webhook down: create refused with: {text}");
    assert!(text.contains("failed calling webhook"), "{text}");
    assert!(ops.get_opt("while-down").await.unwrap().is_none());
    assert!(ops.list(&ListParams::default()).await.unwrap().items.is_empty());

    // The same request goes through once the Service points at the webhook again: the refusal
    // above was the webhook being down, nothing else.
    let up = h.webhook().https_addr;
    h.sandbox()
        .set_service_resolver(Arc::new(move |_: &str, _: &str, _: u16| Some(up)));
    let created = ops
        .create(&PostParams::default(), &grow_request("while-down", "2Gi"))
        .await
        .unwrap();
    // The mutating webhook ran: it defaulted `spec.apply`.
    assert_eq!(created.data["spec"]["apply"], "IfReady", "{:?}", created.data);
    h.shutdown().await.unwrap();
}

/// What must not change while the controller refuses a request.
#[derive(Debug, PartialEq)]
struct Untouched {
    pvcs: BTreeMap<String, (String, Value)>,
    petsets: BTreeMap<String, String>,
    pods: BTreeMap<String, String>,
    db_storage: Value,
}

async fn snapshot(h: &Harness) -> Untouched {
    let lp = ListParams::default().labels(SELECTOR);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    let sts = h.petsets(NS);
    let pods: Api<Pod> = Api::namespaced(h.client(), NS);
    let db = h.databases(DatabaseKind::Redis, NS).get(DB).await.unwrap();
    Untouched {
        pvcs: pvcs
            .list(&lp)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| {
                let spec = serde_json::to_value(&p.spec).unwrap();
                (p.name_any(), (p.resource_version().unwrap_or_default(), spec))
            })
            .collect(),
        petsets: sts
            .list(&lp)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|s| (s.name_any(), s.uid().unwrap_or_default()))
            .collect(),
        pods: pods
            .list(&lp)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
            .collect(),
        db_storage: db.data["spec"]["storage"].clone(),
    }
}

fn paused(db: &DynamicObject) -> bool {
    db.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Paused"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_refuses_a_shrink_that_bypassed_the_webhook() {
    let mut h = standalone_redis().await;
    let client = h.client();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete("volops", &DeleteParams::default())
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete("volops", &DeleteParams::default())
        .await
        .unwrap();

    // Nothing stops a shrink now (and no defaults are added).
    let ops = h.ops_requests(DatabaseKind::Redis, NS);
    ops.create(&PostParams::default(), &grow_request("shrink", "512Mi"))
        .await
        .unwrap();
    let before = snapshot(&h).await;
    assert_eq!(before.pvcs.len(), 1, "{before:?}");
    assert_eq!(before.petsets.len(), 1, "{before:?}");

    // Watch the database from now on: the Paused condition must never appear.
    let ever_paused = Arc::new(AtomicBool::new(false));
    let flag = ever_paused.clone();
    let dbs = h.databases(DatabaseKind::Redis, NS);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={DB}"));
    let (listed, first) = tokio::sync::oneshot::channel::<()>();
    let watch = tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut s = std::pin::pin!(watcher(dbs, cfg).applied_objects());
        while let Some(ev) = s.next().await {
            if ev.as_ref().is_ok_and(paused) {
                flag.store(true, Ordering::SeqCst);
            }
            if let Some(tx) = listed.take() {
                let _ = tx.send(());
            }
        }
    });
    // The watch has the initial state before the controller starts.
    tokio::time::timeout(h.timeout(), first).await.unwrap().unwrap();

    h.start_controller();
    let done = wait_final(&ops, "shrink", h.timeout()).await.unwrap();
    let conditions = done.data["status"]["conditions"].clone();
    println!(
        "controller on a shrink that bypassed the webhook: phase {:?}, conditions {conditions}",
        phase(&done)
    );
    assert_eq!(phase(&done), Some("Failed"), "{:?}", done.data);
    let text = conditions.to_string();
    assert!(
        text.contains("512Mi") && text.contains("1Gi"),
        "the reason names both sizes: {text}"
    );

    let after = snapshot(&h).await;
    watch.abort();
    assert!(!ever_paused.load(Ordering::SeqCst), "the database was paused");
    assert!(!paused(
        &h.databases(DatabaseKind::Redis, NS).get(DB).await.unwrap()
    ));
    assert_eq!(before, after, "PVCs, workloads, pods or the database changed");
    h.shutdown().await.unwrap();
}

/// Issue 18 finding 3: the controller never depends on the webhook. The webhook goes down
/// (failurePolicy Fail) once both requests have orphaned their PetSets, the most dangerous
/// state; the controller still carries one to Successful and rolls the failing other one back,
/// and both databases end resumed with their PetSets back and no finalizer left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding3_the_controller_finishes_and_rolls_back_with_the_webhook_down() {
    let mut h = Harness::start(HarnessOptions {
        start_controller: false,
        ..HarnessOptions::default()
    })
    .await
    .unwrap();
    for f in ["namespace.yaml", "storageclasses.yaml"] {
        h.apply_file(&repo_root().join("examples").join(f)).await.unwrap();
    }
    // Slow resizes keep the requests in Expand long after the switch below.
    h.apply_yaml(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: slow-online}\nprovisioner: \
         sandbox.volops.dev/csi\nallowVolumeExpansion: true\nparameters: {sandbox.volops.dev/resize-mode: online, \
         sandbox.volops.dev/resize-delay-ms: \"700\"}\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\n\
         metadata: {name: resize-fails}\nprovisioner: sandbox.volops.dev/csi\nallowVolumeExpansion: true\n\
         parameters: {sandbox.volops.dev/resize-mode: fail, sandbox.volops.dev/resize-delay-ms: \"700\"}\n",
    )
    .await
    .unwrap();
    let example = std::fs::read_to_string(repo_root().join("examples/redis-standalone.yaml")).unwrap();
    for (db, class) in [("rd-ok", "slow-online"), ("rd-fail", "resize-fails")] {
        let yaml = example
            .replace("name: redis-standalone", &format!("name: {db}"))
            .replace("topolvm-provisioner", class);
        h.apply_yaml(&yaml).await.unwrap();
    }
    let dbs = h.databases(DatabaseKind::Redis, NS);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    for db in ["rd-ok", "rd-fail"] {
        wait_ready(&dbs, db, h.timeout()).await.unwrap();
        wait_for(
            &pvcs,
            &format!("data-{db}-0"),
            "PVC Bound",
            h.timeout(),
            |p: &PersistentVolumeClaim| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"),
        )
        .await
        .unwrap();
    }
    h.webhook()
        .wait_cache("persistentvolumeclaims", 2, h.timeout())
        .await
        .unwrap();

    h.start_controller();
    let tenant_ops: Api<DynamicObject> = Api::namespaced_with(
        h.tenant_client().await.unwrap(),
        NS,
        &DatabaseKind::Redis.ops_resource(),
    );
    let request = |name: &str, db: &str| {
        let mut r = grow_request(name, "2Gi");
        r.data["spec"]["databaseRef"]["name"] = json!(db);
        r
    };
    for (name, db) in [("grow-ok", "rd-ok"), ("grow-fail", "rd-fail")] {
        tenant_ops
            .create(&PostParams::default(), &request(name, db))
            .await
            .unwrap();
    }
    let ops = h.ops_requests(DatabaseKind::Redis, NS);
    let orphaned = |o: &DynamicObject| {
        o.data["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == WorkloadKind::PetSet.orphan_condition() && c["status"] == "True")
        })
    };
    for name in ["grow-ok", "grow-fail"] {
        let o = wait_for(&ops, name, "PetSet orphaned", h.timeout(), orphaned)
            .await
            .unwrap();
        assert!(phase(&o) == Some("Progressing"), "{:#}", o.data["status"]);
    }

    // The webhook goes away: nothing answers behind its Service.
    let dead = dead_address();
    h.sandbox()
        .set_service_resolver(Arc::new(move |_: &str, _: &str, _: u16| Some(dead)));
    let down = tenant_ops
        .create(&PostParams::default(), &request("while-down", "rd-ok"))
        .await
        .expect_err("the webhook is down");
    assert!(down.to_string().contains("failed calling webhook"), "{down}");
    // ... while a write of the controller's own user never goes to it.
    let probe = json!({"metadata": {"labels": {"example.com/probe": "controller"}}});
    let own =
        Api::<DynamicObject>::namespaced_with(h.controller_client(), NS, &DatabaseKind::Redis.ops_resource())
            .patch("grow-ok", &Default::default(), &kube::api::Patch::Merge(&probe))
            .await;
    assert!(
        own.is_ok(),
        "the API server sent the controller's own write to the webhook (are the configuration's \
         matchConditions evaluated?): {own:?}"
    );

    let ok = wait_final(&ops, "grow-ok", h.timeout()).await.unwrap();
    let failed = wait_final(&ops, "grow-fail", h.timeout()).await.unwrap();
    println!(
        "webhook down after the orphan step: grow-ok {:?}, grow-fail {:?} ({})",
        phase(&ok),
        phase(&failed),
        failed.data["status"]["conditions"]
    );
    assert_eq!(phase(&ok), Some("Successful"), "{:#}", ok.data["status"]);
    assert_eq!(phase(&failed), Some("Failed"), "{:#}", failed.data["status"]);
    let sts = h.petsets(NS);
    for db in ["rd-ok", "rd-fail"] {
        let d = dbs.get(db).await.unwrap();
        let paused_now = d.data["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Paused" && c["status"] == "True"));
        assert!(!paused_now, "{db} left paused: {:#}", d.data["status"]);
        assert!(
            sts.get_opt(db).await.unwrap().is_some(),
            "PetSet {db} not recreated"
        );
    }
    let grown = pvcs.get("data-rd-ok-0").await.unwrap();
    let capacity = grown.status.and_then(|s| s.capacity).unwrap_or_default();
    assert_eq!(capacity.get("storage").map(|q| q.0.as_str()), Some("2Gi"));
    h.shutdown().await.unwrap();
}
