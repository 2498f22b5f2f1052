//! A hostile tenant against the controller (issue 18), over HTTPS against the sandbox: the
//! tenant acts through the API with its own identity ([`tenant_client`]), the controller with
//! the chart's ServiceAccount ([`controller_client`]). No webhook is registered: these are the
//! cases the webhook does not catch (bypassed by the namespace opt-out label, `failurePolicy:
//! Ignore`, not yet registered), so the controller alone must hold. Redis runs on StatefulSets
//! here (the older KubeDB layout, [`sandbox_on_statefulsets`]): the controller's code is the same
//! for both kinds, and these cases name the workload kind in what the tenant forges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::StatefulSet,
    core::v1::{PersistentVolumeClaim, Pod, Secret},
};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};
use support::*;
use volops_controller::Metrics;
use volops_shared::api::VolumeExpansionPolicy;

/// What a tenant would like the controller to create: its own image, the node's root file
/// system, another team's Secret.
const ATTACKER_IMAGE: &str = "attacker.example/miner:latest";

fn evil_pod_spec() -> Value {
    json!({"containers": [{"name": "x", "image": ATTACKER_IMAGE,
                           "volumeMounts": [{"name": "root", "mountPath": "/host"},
                                            {"name": "loot", "mountPath": "/loot"}]}],
           "volumes": [{"name": "root", "hostPath": {"path": "/"}},
                       {"name": "loot", "secret": {"secretName": "team-b-credentials"}}]})
}

fn evil_statefulset(name: &str) -> String {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": name, "namespace": "team",
                        "labels": {"app.kubernetes.io/instance": "rd"}},
           "spec": {"replicas": 1, "serviceName": "rd-pods",
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": evil_pod_spec()},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"],
                                 "resources": {"requests": {"storage": "1Gi"}}}}]}})
    .to_string()
}

fn evil_pod(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "team"}, "spec": evil_pod_spec()})
    .to_string()
}

/// Every pod and StatefulSet name seen in `ns`, and every one that ever ran the attacker's
/// image or mounted a hostPath (from watches started before the test acts).
#[derive(Clone, Default)]
struct Seen {
    names: Arc<Mutex<BTreeSet<String>>>,
    hostile: Arc<Mutex<BTreeSet<String>>>,
}

fn hostile(spec: &Value) -> bool {
    let text = spec.to_string();
    text.contains(ATTACKER_IMAGE) || text.contains("hostPath")
}

fn watch_objects(client: &kube::Client, ns: &str) -> (Seen, Vec<tokio::task::JoinHandle<()>>) {
    let seen = Seen::default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let s = seen.clone();
    let pod_task = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(pods, watcher::Config::default()).applied_objects());
        while let Some(Ok(p)) = events.next().await {
            let spec = serde_json::to_value(&p.spec).unwrap();
            s.names.lock().unwrap().insert(format!("pod/{}", p.name_any()));
            if hostile(&spec) {
                s.hostile.lock().unwrap().insert(format!("pod/{}", p.name_any()));
            }
        }
    });
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let s = seen.clone();
    let sts_task = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(sets, watcher::Config::default()).applied_objects());
        while let Some(Ok(o)) = events.next().await {
            let spec = serde_json::to_value(&o.spec).unwrap();
            s.names
                .lock()
                .unwrap()
                .insert(format!("statefulset/{}", o.name_any()));
            if hostile(&spec) {
                s.hostile
                    .lock()
                    .unwrap()
                    .insert(format!("statefulset/{}", o.name_any()));
            }
        }
    });
    (seen, vec![pod_task, sts_task])
}

/// The controller's saved-state Secrets (none once every request is over).
async fn saved_state_secrets(client: &kube::Client) -> Vec<Secret> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), STATE_NS);
    secrets
        .list(&ListParams::default().labels("app.kubernetes.io/component=saved-state"))
        .await
        .unwrap()
        .items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_manifests_and_pods_a_tenant_writes_are_never_created() {
    let (sb, admin) = sandbox_on_statefulsets().await;
    // An offline-only driver: an Online request stays in Expand until its timeout.
    setup(&admin, "team", "standard", "offline").await;
    let tenant = tenant_client(&sb).await;
    database(&tenant, "team", "Standalone", "rd", "standard").await;
    let (seen, watches) = watch_objects(&admin, "team");
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));

    // At CREATE: a workload and a pod of the tenant's own, in the keys the controller once
    // used for what it saved.
    let ops = ops_api(&tenant, "team", "RedisOpsRequest");
    let mut req = ops_request(
        "RedisOpsRequest",
        "grow",
        "rd",
        "Online",
        "2Gi",
        json!({"timeout": "3s"}),
    );
    req.metadata.annotations = Some(
        [
            (
                "volops.dev/workload.statefulset.evil".to_owned(),
                evil_statefulset("evil"),
            ),
            (
                "volumeexpansion.ops.kubedb.com/evil-0".to_owned(),
                evil_pod("evil-0"),
            ),
        ]
        .into(),
    );
    ops.create(&PostParams::default(), &req)
        .await
        .expect("ops request created");
    // At UPDATE, once the database's own StatefulSet is saved and deleted: its manifest and
    // its pod's, replaced with the tenant's.
    wait_for(&ops, "grow", "workloads orphaned", |r| {
        has_condition(r, "OrphanStatefulSetPods")
    })
    .await;
    let forged = json!({"metadata": {"annotations": {
        "volops.dev/workload.statefulset.rd": evil_statefulset("rd"),
        "volumeexpansion.ops.kubedb.com/rd-0": evil_pod("rd-0"),
    }}});
    ops.patch("grow", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .expect("the API server takes any annotation");

    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    for w in watches {
        w.abort();
    }
    assert_eq!(at(&done, "/status/phase"), Some("Failed"));
    let hostile = seen.hostile.lock().unwrap().clone();
    assert!(
        hostile.is_empty(),
        "created from a tenant's annotation: {hostile:?}"
    );
    let names = seen.names.lock().unwrap().clone();
    assert!(
        !names.contains("statefulset/evil") && !names.contains("pod/evil-0"),
        "{names:?}"
    );
    // The database's own StatefulSet came back as it was saved.
    let sts: Api<StatefulSet> = Api::namespaced(admin.clone(), "team");
    let rd = sts.get("rd").await.expect("restored by the cleanup");
    let template = serde_json::to_value(&rd.spec.unwrap().template).unwrap();
    assert!(!hostile_template(&template), "{template}");
    // Reported, not acted on.
    let ignored = condition_message(&done, "AnnotationsIgnored");
    assert!(
        ignored.contains("volops.dev/workload.statefulset.evil")
            && ignored.contains("volumeexpansion.ops.kubedb.com/evil-0"),
        "{:#?}",
        done.data["status"]
    );
    let warnings: Vec<_> = events_about(&admin, "team", "grow")
        .await
        .into_iter()
        .filter(|(t, reason, ..)| t == "Warning" && reason == "AnnotationsIgnored")
        .collect();
    assert!(!warnings.is_empty(), "a Warning event reports the annotations");
    let db = dynamic(&admin, "team", "kubedb.com", "v1", "Redis", "redises")
        .get("rd")
        .await
        .unwrap();
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    assert!(
        saved_state_secrets(&admin).await.is_empty(),
        "saved state removed"
    );
    sb.shutdown().await.unwrap();
}

fn hostile_template(template: &Value) -> bool {
    hostile(template)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_changed_after_admission_fails_the_request_and_is_never_carried_out() {
    let (sb, admin) = sandbox_on_statefulsets().await;
    setup(&admin, "team", "standard", "online").await;
    // Each resize step takes 1.5 s: the expansion is still on its way when the spec changes.
    storage_class(&admin, "slow", "online", 1500).await;
    let policies: Api<VolumeExpansionPolicy> = Api::all(admin.clone());
    let policy: VolumeExpansionPolicy = serde_json::from_value(json!({
        "apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
        "metadata": {"name": "at-most-3gi"}, "spec": {"maxSize": "3Gi"}
    }))
    .unwrap();
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let tenant = tenant_client(&sb).await;
    database(&tenant, "team", "Standalone", "rd", "slow").await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), "team");
    let largest = Arc::new(Mutex::new(String::new()));
    let l = largest.clone();
    let pvc_watch = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(pvcs, watcher::Config::default()).applied_objects());
        while let Some(Ok(p)) = events.next().await {
            let request = p
                .spec
                .and_then(|s| s.resources)
                .and_then(|r| r.requests)
                .and_then(|r| r.get("storage").map(|q| q.0.clone()))
                .unwrap_or_default();
            let mut l = l.lock().unwrap();
            if request.len() > l.len() || (request.len() == l.len() && request > *l) {
                *l = request;
            }
        }
    });
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "team", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .expect("2Gi is within the policy");
    wait_for(&ops, "grow", "admitted", |r| has_condition(r, "VolumeExpansion")).await;
    // The webhook would refuse this change; without it only the controller stands between
    // the tenant and 200Gi under a 3Gi policy.
    ops.patch(
        "grow",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"volumeExpansion": {"redis": "200Gi"}}})),
    )
    .await
    .expect("the API server takes the change");
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    pvc_watch.abort();
    let failed = failure_message(&done);
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Failed"),
        "{:#?}",
        done.data["status"]
    );
    assert!(
        failed.contains("changed after it was admitted") && failed.contains("2Gi"),
        "{failed}"
    );
    let largest = largest.lock().unwrap().clone();
    assert!(
        ["1Gi", "2Gi"].contains(&largest.as_str()),
        "a PVC asked for {largest}"
    );
    let db = dynamic(&admin, "team", "kubedb.com", "v1", "Redis", "redises")
        .get("rd")
        .await
        .unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("1Gi"));
    assert!(paused_conditions(&db).is_empty(), "database resumed");
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_named_after_another_teams_statefulset_never_touches_it() {
    let (sb, admin) = sandbox_on_statefulsets().await;
    setup(&admin, "shared", "standard", "online").await;
    // Team B's StatefulSet `cache`, with the labels KubeDB would give a Redis named `cache`
    // (labels are not identity: anyone may write them). No Redis owns it.
    let labels = json!({"app.kubernetes.io/name": "redises.kubedb.com",
                        "app.kubernetes.io/instance": "cache",
                        "app.kubernetes.io/managed-by": "kubedb.com"});
    let victim: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "cache", "namespace": "shared", "labels": labels},
        "spec": {"replicas": 1, "serviceName": "cache-pods",
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "cache", "image": "team-b/cache:1"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"},
                     "spec": {"storageClassName": "standard", "accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(admin.clone(), "shared");
    let victim = sets
        .create(&PostParams::default(), &victim)
        .await
        .expect("team B's StatefulSet");
    let victim_uid = victim.uid().unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), "shared");
    wait_for(&pvcs, "data-cache-0", "team B's claim bound", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await;
    // Ready before the tenant's database appears: the provisioner judges that database's phase
    // from this StatefulSet, and no event of a StatefulSet it does not own wakes it again.
    wait_for(&sets, "cache", "team B's StatefulSet Ready", |s| {
        s.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    })
    .await;

    // The tenant names a database after it and asks to grow it.
    let tenant = tenant_client(&sb).await;
    database(&tenant, "shared", "Standalone", "cache", "standard").await;
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "shared", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "cache", "Online", "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    let failed = failure_message(&done);
    assert_eq!(at(&done, "/status/phase"), Some("Failed"), "{failed}");
    assert!(
        failed.contains("StatefulSet shared/cache") && failed.contains("not controlled by Redis"),
        "{failed}"
    );
    let after = sets.get("cache").await.expect("team B's StatefulSet is there");
    assert_eq!(after.uid().as_deref(), Some(victim_uid.as_str()), "never deleted");
    assert!(after.metadata.deletion_timestamp.is_none());
    let pvc = pvcs.get("data-cache-0").await.unwrap();
    assert_eq!(
        pvc.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0,
        "1Gi",
        "team B's claim never patched"
    );
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_deleted_without_its_finalizer_is_still_cleaned_up() {
    let (sb, admin) = sandbox_on_statefulsets().await;
    // An offline-only driver: an Online request stays in Expand.
    setup(&admin, "team", "standard", "offline").await;
    let tenant = tenant_client(&sb).await;
    let redis = database(&tenant, "team", "Standalone", "rd", "standard").await;
    let controller = controller_client(&sb).await;
    let (stop, task) = start_controller(controller.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "team", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    wait_for(&ops, "grow", "workloads orphaned", |r| {
        has_condition(r, "OrphanStatefulSetPods")
    })
    .await;
    // Mid-flight, with the database paused and its StatefulSet deleted, the controller is
    // away (a restart) while the tenant strips the finalizer and deletes the request.
    let _ = stop.send(());
    task.await.unwrap();
    ops.patch(
        "grow",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("finalizer stripped");
    ops.delete("grow", &Default::default()).await.expect("deleted");
    assert!(ops.get_opt("grow").await.unwrap().is_none(), "gone at once");

    let (stop, task) = start_controller(controller, Arc::new(Metrics::default()));
    let sts = dynamic(&admin, "team", "apps", "v1", "StatefulSet", "statefulsets");
    wait_for(&sts, "rd", "StatefulSet restored", |_| true).await;
    wait_for(&redis, "rd", "database resumed", |db| {
        paused_conditions(db).is_empty()
    })
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while !saved_state_secrets(&admin).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "saved state never removed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    task.await.unwrap();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "team");
    pods.get("rd-0").await.expect("the pod kept running");
    sb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_a_tenant_puts_in_place_of_the_database_s_is_never_deleted() {
    let (sb, admin) = sandbox_on_statefulsets().await;
    // Offline, each resize step 1 s: the tenant's swap of the last pod lands long before the
    // controller gets to it.
    setup(&admin, "team", "slow", "offline").await;
    storage_class(&admin, "slower", "offline", 1000).await;
    let tenant = tenant_client(&sb).await;
    database(&tenant, "team", "ZooKeeper", "zk", "slower").await;
    let (stop, task) = start_controller(controller_client(&sb).await, Arc::new(Metrics::default()));
    let ops = ops_api(&tenant, "team", "ZooKeeperOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("ZooKeeperOpsRequest", "grow", "zk", "Offline", "2Gi", json!({})),
    )
    .await
    .expect("ops request created");
    wait_for(&ops, "grow", "workloads orphaned", |r| {
        has_condition(r, "OrphanPetSetPods")
    })
    .await;
    // The database's pod zk-2 (orphaned now) is replaced by one of the tenant's own.
    let pods: Api<Pod> = Api::namespaced(tenant.clone(), "team");
    pods.delete("zk-2", &Default::default())
        .await
        .expect("pod deleted");
    let mine: Pod = serde_json::from_value(json!({
        "metadata": {"name": "zk-2", "namespace": "team"},
        "spec": {"containers": [{"name": "mine", "image": "tenant/tool:1"}]}
    }))
    .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let mine = loop {
        match pods.create(&PostParams::default(), &mine).await {
            Ok(p) => break p,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let done = wait_final(&ops, "grow").await;
    let still = pods.get_opt("zk-2").await.unwrap();
    let _ = stop.send(());
    task.await.unwrap();
    let failed = failure_message(&done);
    assert_eq!(at(&done, "/status/phase"), Some("Failed"), "{failed}");
    assert!(
        failed.contains("pod team/zk-2") && failed.contains("refusing to delete it"),
        "{failed}"
    );
    assert_eq!(
        still.and_then(|p| p.uid()),
        mine.uid(),
        "the tenant's pod was never deleted"
    );
    sb.shutdown().await.unwrap();
}
