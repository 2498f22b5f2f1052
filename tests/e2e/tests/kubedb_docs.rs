//! Issue 20, "tests and the demo run on KubeDB's own objects": on a sandbox holding KubeDB's real
//! CRDs (../shared/kubedb/crds), the databases of KubeDB's docs (../shared/kubedb/docs-examples)
//! are applied unchanged - Redis standalone (v1 and v1alpha2), cluster and sentinel, ZooKeeper -
//! and each is expanded Online and Offline (two successive growths) to Successful, with every PVC
//! (spec and status), every workload's claim template and the database's `spec.storage` at the
//! new size and `Paused` removed. The sandbox's KubeDB-like provisioner runs every database on
//! PetSets, as current KubeDB does; the last test runs Redis on StatefulSets, the older layout.
//!
//! The docs' ops requests run unchanged where they target these databases
//! (redis_online-vol-expansion.yaml, zookeeper_zkops-volume-exp-*.yaml,
//! zookeeper_concepts_*.yaml). The docs have no Redis Offline request and no request for the
//! other Redis databases: those are derived from redis_online-vol-expansion.yaml changing only
//! `metadata.name`, `spec.databaseRef.name`, `spec.volumeExpansion.mode` and, for the second
//! growth of a database, `spec.volumeExpansion.redis` (a second request at the same size would
//! not be a growth).
//!
//! The docs assume a namespace `demo` and StorageClasses `standard` (and `topolvm-provisioner`
//! for sample-redis) that allow volume expansion; the tests create them, visibly, below.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};
use volops_e2e::wait::{at, wait_final, wait_ready};
use volops_e2e::{Harness, HarnessOptions, petset_resource, repo_root};
use volops_sandbox::{ClusterConfig, RedisWorkload};
use volops_shared::DatabaseKind;

const NS: &str = "demo";

/// ../shared/kubedb: required in CI, skipped elsewhere (as tests/kubedb_crds.rs).
fn kubedb_dir() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/kubedb");
    if dir.join("crds").is_dir() && dir.join("docs-examples").is_dir() {
        return Some(dir);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{} (KubeDB's CRDs and docs manifests) is required when CI=true",
        dir.display()
    );
    eprintln!(
        "SKIPPED: {} is missing (KubeDB's CRDs and docs manifests live beside the repository)",
        dir.display()
    );
    None
}

fn doc(kubedb: &Path, file: &str) -> PathBuf {
    kubedb.join("docs-examples").join(file)
}

/// A sandbox (with the webhook and the controller as their ServiceAccounts) holding every CRD
/// KubeDB installs - its PetSet CRD included - plus volops's own, the namespace and the
/// StorageClasses KubeDB's docs assume.
async fn kubedb_sandbox(kubedb: &Path, redis: RedisWorkload) -> Harness {
    let h = Harness::start(HarnessOptions {
        cluster: ClusterConfig::fast().with_redis_workload(redis),
        install_crds: false,
        timeout: Duration::from_secs(120),
        ..HarnessOptions::default()
    })
    .await
    .unwrap();
    let mut crds: Vec<PathBuf> = std::fs::read_dir(kubedb.join("crds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        // An old copy of the ZooKeeper autoscaler CRD; the current one is applied.
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && !p.to_string_lossy().contains(".before-"))
        .collect();
    crds.sort();
    for f in crds {
        h.apply_file(&f).await.unwrap();
    }
    // KubeDB's PetSet CRD replaced the one the sandbox registers: its schema types
    // `spec.podPlacementPolicy`, the sandbox's keeps the spec as is.
    let crds: Api<CustomResourceDefinition> = Api::all(h.client());
    let petsets = serde_json::to_value(crds.get("petsets.apps.k8s.appscode.com").await.unwrap()).unwrap();
    assert!(
        petsets
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/podPlacementPolicy")
            .is_some(),
        "KubeDB's PetSet CRD is installed"
    );
    // volops's own CRD, as the chart's crds/ installs it.
    h.apply_file(&repo_root().join("charts/volops/crds/volumeexpansionpolicies.volops.dev.yaml"))
        .await
        .unwrap();
    h.webhook().wait_ready(h.timeout()).await.unwrap();
    // What KubeDB's docs take for granted: the `demo` namespace, and StorageClasses whose
    // driver expands volumes (online as well as offline, as a CSI driver with the node
    // EXPAND_VOLUME capability does). The sandbox's simulated CSI driver reads the parameter.
    h.apply_yaml(
        r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
provisioner: sandbox.volops.dev/csi
allowVolumeExpansion: true
parameters:
  sandbox.volops.dev/resize-mode: online
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: topolvm-provisioner
provisioner: sandbox.volops.dev/csi
allowVolumeExpansion: true
parameters:
  sandbox.volops.dev/resize-mode: online
"#,
    )
    .await
    .unwrap();
    h
}

/// One database of the docs and where its volumes are.
struct Db {
    kind: DatabaseKind,
    name: &'static str,
    /// Its workloads (PetSets, or StatefulSets in the older layout).
    workloads: Vec<String>,
    /// Pods (and PVCs) it has.
    pods: usize,
}

impl Db {
    fn redis(name: &'static str, pods: usize) -> Self {
        Self {
            kind: DatabaseKind::Redis,
            name,
            workloads: vec![name.to_owned()],
            pods,
        }
    }
    fn redis_cluster(name: &'static str, shards: usize, replicas: usize) -> Self {
        Self {
            kind: DatabaseKind::Redis,
            name,
            workloads: (0..shards).map(|i| format!("{name}-shard{i}")).collect(),
            pods: shards * replicas,
        }
    }
    fn zookeeper(name: &'static str, pods: usize) -> Self {
        Self {
            kind: DatabaseKind::ZooKeeper,
            name,
            workloads: vec![name.to_owned()],
            pods,
        }
    }
    fn selector(&self) -> String {
        format!("app.kubernetes.io/instance={}", self.name)
    }
}

/// An ops request to run: a docs file unchanged, or the docs' Redis request with a new name,
/// database, mode and size.
enum Request {
    Docs(&'static str),
    Derived {
        name: &'static str,
        database: &'static str,
        mode: &'static str,
        size: &'static str,
    },
}

/// One growth of one database.
struct Growth<'a> {
    db: &'a Db,
    request: Request,
    /// The mode and size the request asks for (checked against the file for docs requests).
    mode: &'static str,
    size: &'static str,
}

impl Growth<'_> {
    /// The request object, and where it comes from (for the report).
    fn object(&self, kubedb: &Path) -> (DynamicObject, String) {
        match &self.request {
            Request::Docs(file) => {
                let text = std::fs::read_to_string(doc(kubedb, file)).unwrap();
                let obj: DynamicObject = serde_yaml::from_str(&text).unwrap();
                let field = self.db.kind.size_field();
                assert_eq!(at(&obj, "/spec/volumeExpansion/mode"), Some(self.mode), "{file}");
                assert_eq!(
                    at(&obj, &format!("/spec/volumeExpansion/{field}")),
                    Some(self.size),
                    "{file}"
                );
                assert_eq!(at(&obj, "/spec/databaseRef/name"), Some(self.db.name), "{file}");
                (obj, format!("{file} (unchanged)"))
            }
            Request::Derived {
                name,
                database,
                mode,
                size,
            } => {
                let file = "redis_online-vol-expansion.yaml";
                let text = std::fs::read_to_string(doc(kubedb, file)).unwrap();
                let mut obj: DynamicObject = serde_yaml::from_str(&text).unwrap();
                obj.metadata.name = Some((*name).to_owned());
                obj.data["spec"]["databaseRef"]["name"] = json!(database);
                obj.data["spec"]["volumeExpansion"]["mode"] = json!(mode);
                obj.data["spec"]["volumeExpansion"]["redis"] = json!(size);
                (obj, format!("{file} as {name} ({database}, {mode}, {size})"))
            }
        }
    }
}

/// A growth by a request derived from the docs' Redis request.
fn derived<'a>(db: &'a Db, name: &'static str, mode: &'static str, size: &'static str) -> Growth<'a> {
    Growth {
        db,
        request: Request::Derived {
            name,
            database: db.name,
            mode,
            size,
        },
        mode,
        size,
    }
}

/// A growth by a docs request, unchanged.
fn docs<'a>(db: &'a Db, file: &'static str, mode: &'static str, size: &'static str) -> Growth<'a> {
    Growth {
        db,
        request: Request::Docs(file),
        mode,
        size,
    }
}

async fn pod_uids(h: &Harness, db: &Db) -> BTreeMap<String, String> {
    let pods: Api<Pod> = Api::namespaced(h.client(), NS);
    let list = pods
        .list(&ListParams::default().labels(&db.selector()))
        .await
        .unwrap();
    list.items
        .iter()
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

fn claim_size(workload: &DynamicObject) -> Option<&str> {
    workload
        .data
        .pointer("/spec/volumeClaimTemplates/0/spec/resources/requests/storage")
        .and_then(Value::as_str)
}

/// Every PVC (request and capacity), every workload's claim template and the database's
/// `spec.storage` at `size`; `Paused` removed.
async fn assert_grown(h: &Harness, db: &Db, workloads: &ApiResource, size: &str, what: &str) {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    let list = pvcs
        .list(&ListParams::default().labels(&db.selector()))
        .await
        .unwrap();
    assert_eq!(list.items.len(), db.pods, "{what}: PVCs of {}", db.name);
    for pvc in &list.items {
        let request = pvc
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.as_str());
        let capacity = pvc
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get("storage"))
            .map(|q| q.0.as_str());
        assert_eq!(
            (request, capacity),
            (Some(size), Some(size)),
            "{what}: PVC {} spec and status",
            pvc.name_any()
        );
    }
    let sets = h.dynamic(workloads, NS);
    for name in &db.workloads {
        let set = sets
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{what}: {} {name} not recreated: {e}", workloads.kind));
        assert_eq!(claim_size(&set), Some(size), "{what}: {} {name}", workloads.kind);
    }
    let d = h.databases(db.kind, NS).get(db.name).await.unwrap();
    assert_eq!(
        at(&d, "/spec/storage/resources/requests/storage"),
        Some(size),
        "{what}: {} spec.storage",
        db.name
    );
    let conditions = d.data["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !conditions.iter().any(|c| c["type"] == "Paused"),
        "{what}: {} still paused: {conditions:?}",
        db.name
    );
}

/// Runs one round: every request at once (one per database), each to Successful, then checks
/// every database. Online keeps every pod; Offline restarts every pod.
async fn round(h: &Harness, kubedb: &Path, workloads: &ApiResource, growths: &[Growth<'_>]) {
    // creationTimestamp has whole seconds, and the queue orders requests of one second by name
    // (shared/src/rules/queue.rs): a round's requests start in a later second than the last
    // round's, as a user's next request would, so none is taken for the older one and skipped.
    let into_second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let to_next = 1_000_000_000u64.saturating_sub(u64::from(into_second));
    tokio::time::sleep(Duration::from_nanos(to_next) + Duration::from_millis(20)).await;
    let before = futures::future::join_all(growths.iter().map(|g| pod_uids(h, g.db))).await;
    for (g, uids) in growths.iter().zip(&before) {
        assert_eq!(uids.len(), g.db.pods, "pods of {}: {uids:?}", g.db.name);
    }
    let mut names = Vec::new();
    for g in growths {
        let (obj, source) = g.object(kubedb);
        println!("{} {}: {source}", g.db.name, g.mode);
        names.push(obj.name_any());
        volops_e2e::apply::apply_all(&h.client(), &[obj]).await.unwrap();
    }
    let sent = Instant::now();
    let done = futures::future::join_all(growths.iter().zip(&names).map(|(g, name)| async move {
        let done = wait_final(&h.ops_requests(g.db.kind, NS), name, h.timeout())
            .await
            .unwrap();
        println!(
            "{name}: final {:?} after the round's requests were sent",
            sent.elapsed()
        );
        done
    }))
    .await;
    for ((g, name), req) in growths.iter().zip(&names).zip(&done) {
        assert_eq!(
            at(req, "/status/phase"),
            Some("Successful"),
            "{name}: {:#}",
            req.data["status"]
        );
        let what = format!("{name} ({} {})", g.db.name, g.mode);
        assert_grown(h, g.db, workloads, g.size, &what).await;
    }
    for (g, uids) in growths.iter().zip(&before) {
        wait_ready(&h.databases(g.db.kind, NS), g.db.name, h.timeout())
            .await
            .unwrap();
        let after = pod_uids(h, g.db).await;
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            uids.keys().collect::<Vec<_>>(),
            "{}: every pod there",
            g.db.name
        );
        if g.mode == "Online" {
            assert_eq!(&after, uids, "{}: Online restarts no pod", g.db.name);
        } else {
            assert!(
                after.iter().all(|(n, uid)| uids[n] != *uid),
                "{}: Offline restarts every pod",
                g.db.name
            );
        }
    }
}

/// Applies the docs' database manifests unchanged and waits until each database is Ready and
/// the webhook has seen every PVC.
async fn provision(h: &Harness, kubedb: &Path, files: &[&str], dbs: &[&Db]) {
    for f in files {
        h.apply_file(&doc(kubedb, f)).await.unwrap();
    }
    for db in dbs {
        wait_ready(&h.databases(db.kind, NS), db.name, h.timeout())
            .await
            .unwrap();
    }
    let pvcs: usize = dbs.iter().map(|d| d.pods).sum();
    h.webhook()
        .wait_cache("persistentvolumeclaims", pvcs, h.timeout())
        .await
        .unwrap();
}

/// Every workload of `dbs` is of kind `ar`, and none of the other kind exists.
async fn assert_layout(h: &Harness, dbs: &[&Db], ar: &ApiResource, other: &ApiResource) {
    let sets = h.dynamic(ar, NS);
    for db in dbs {
        for name in &db.workloads {
            sets.get(name)
                .await
                .unwrap_or_else(|e| panic!("{} {name} of {}: {e}", ar.kind, db.name));
        }
    }
    let others = h.dynamic(other, NS).list(&ListParams::default()).await.unwrap();
    assert!(
        others.items.is_empty(),
        "no {} expected: {:?}",
        other.kind,
        others.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
    );
}

fn statefulset_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::apps::v1::StatefulSet>(&())
}

/// Redis standalone (v1), cluster (two docs manifests), sentinel mode, and ZooKeeper, all in one
/// sandbox on PetSets: Online to 2Gi (the docs' requests), then Offline (ZooKeeper's docs
/// request to 4Gi; Redis derived, to 3Gi).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_databases_on_petsets_grow_online_then_offline() {
    let Some(kubedb) = kubedb_dir() else { return };
    let started = Instant::now();
    let h = kubedb_sandbox(&kubedb, RedisWorkload::PetSet).await;
    let standalone = Db::redis("redis-quickstart", 1);
    let cluster = Db::redis_cluster("redis-cluster", 3, 2);
    let sample = Db::redis_cluster("sample-redis", 3, 2);
    let sentinel = Db::redis("rd-demo", 3);
    let zk = Db::zookeeper("zk-quickstart", 3);
    let dbs = [&standalone, &cluster, &sample, &sentinel, &zk];
    provision(
        &h,
        &kubedb,
        &[
            "redis_quickstart_demo-v1.yaml",
            "redis_clustering_demo-1.yaml",
            "redis_sample-redis.yaml",
            "redis_sentinel_sentinel.yaml",
            "redis_sentinel_redis.yaml",
            "zookeeper_zookeeper.yaml",
        ],
        &dbs,
    )
    .await;
    assert_layout(&h, &dbs, &petset_resource(), &statefulset_resource()).await;
    let provisioned = started.elapsed();

    let online = [
        docs(&sample, "redis_online-vol-expansion.yaml", "Online", "2Gi"),
        derived(&standalone, "quickstart-online", "Online", "2Gi"),
        derived(&cluster, "cluster-online", "Online", "2Gi"),
        derived(&sentinel, "sentinel-online", "Online", "2Gi"),
        docs(&zk, "zookeeper_zkops-volume-exp-online.yaml", "Online", "2Gi"),
    ];
    round(&h, &kubedb, &petset_resource(), &online).await;
    let after_online = started.elapsed();

    let offline = [
        derived(&sample, "sample-offline", "Offline", "3Gi"),
        derived(&standalone, "quickstart-offline", "Offline", "3Gi"),
        derived(&cluster, "cluster-offline", "Offline", "3Gi"),
        derived(&sentinel, "sentinel-offline", "Offline", "3Gi"),
        docs(
            &zk,
            "zookeeper_concepts_offline-volume-expansion.yaml",
            "Offline",
            "4Gi",
        ),
    ];
    round(&h, &kubedb, &petset_resource(), &offline).await;
    println!(
        "wall time: sandbox + provisioning {:?}, Online round {:?}, Offline round {:?}",
        provisioned,
        after_online - provisioned,
        started.elapsed() - after_online
    );
    h.shutdown().await.unwrap();
}

/// The v1alpha2 Redis of the quickstart (same name as the v1 one, so in its own sandbox) and
/// the ZooKeeper quickstart's manifest: Offline first (ZooKeeper's docs request to 2Gi), then
/// Online (ZooKeeper's concepts request to 3Gi).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_v1alpha2_redis_and_zookeeper_quickstart_grow_offline_then_online() {
    let Some(kubedb) = kubedb_dir() else { return };
    let started = Instant::now();
    let h = kubedb_sandbox(&kubedb, RedisWorkload::PetSet).await;
    let standalone = Db::redis("redis-quickstart", 1);
    let zk = Db::zookeeper("zk-quickstart", 3);
    let dbs = [&standalone, &zk];
    provision(
        &h,
        &kubedb,
        &[
            "redis_quickstart_demo-v1alpha2.yaml",
            "zookeeper_quickstart_zoo.yaml",
        ],
        &dbs,
    )
    .await;
    // Stored as applied: v1alpha2 with its terminationPolicy.
    let alpha = Api::<DynamicObject>::namespaced_with(
        h.client(),
        NS,
        &ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("kubedb.com", "v1alpha2", "Redis"),
            "redises",
        ),
    )
    .get("redis-quickstart")
    .await
    .unwrap();
    assert_eq!(at(&alpha, "/spec/terminationPolicy"), Some("DoNotTerminate"));
    assert_layout(&h, &dbs, &petset_resource(), &statefulset_resource()).await;

    let offline = [
        derived(&standalone, "quickstart-offline", "Offline", "2Gi"),
        docs(&zk, "zookeeper_zkops-volume-exp-offline.yaml", "Offline", "2Gi"),
    ];
    round(&h, &kubedb, &petset_resource(), &offline).await;
    let online = [
        derived(&standalone, "quickstart-online", "Online", "3Gi"),
        docs(
            &zk,
            "zookeeper_concepts_online-volume-expansion.yaml",
            "Online",
            "3Gi",
        ),
    ];
    round(&h, &kubedb, &petset_resource(), &online).await;
    println!("wall time: {:?}", started.elapsed());
    h.shutdown().await.unwrap();
}

/// The older layout: Redis on StatefulSets (KubeDB before PetSets). The docs' cluster and
/// standalone (v1) grow Online (the docs' request, derived) and then Offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_redis_on_statefulsets_grows_online_then_offline() {
    let Some(kubedb) = kubedb_dir() else { return };
    let started = Instant::now();
    let h = kubedb_sandbox(&kubedb, RedisWorkload::StatefulSet).await;
    let standalone = Db::redis("redis-quickstart", 1);
    let cluster = Db::redis_cluster("redis-cluster", 3, 2);
    let dbs = [&standalone, &cluster];
    provision(
        &h,
        &kubedb,
        &["redis_quickstart_demo-v1.yaml", "redis_clustering_demo-1.yaml"],
        &dbs,
    )
    .await;
    assert_layout(&h, &dbs, &statefulset_resource(), &petset_resource()).await;
    let online = [
        derived(&standalone, "quickstart-online", "Online", "2Gi"),
        derived(&cluster, "cluster-online", "Online", "2Gi"),
    ];
    round(&h, &kubedb, &statefulset_resource(), &online).await;
    let offline = [
        derived(&standalone, "quickstart-offline", "Offline", "3Gi"),
        derived(&cluster, "cluster-offline", "Offline", "3Gi"),
    ];
    round(&h, &kubedb, &statefulset_resource(), &offline).await;
    assert_layout(&h, &dbs, &statefulset_resource(), &petset_resource()).await;
    println!("wall time: {:?}", started.elapsed());
    h.shutdown().await.unwrap();
}
