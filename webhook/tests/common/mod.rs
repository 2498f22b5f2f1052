//! Test fixtures: a cluster state held as JSON, loaded into the webhook's real caches through
//! their writers, and AdmissionReview builders.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use kube::runtime::watcher::Event;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower::ServiceExt;
use volops_shared::facts::RuleOptions;
use volops_webhook::caches::ApplyEvent;
use volops_webhook::metrics::Metrics;
use volops_webhook::routes::{AppState, router};
use volops_webhook::{Caches, Writers};

pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Labels KubeDB puts on every offshoot of Redis `db`.
pub fn redis_labels(db: &str) -> Value {
    json!({"app.kubernetes.io/name": "redises.kubedb.com", "app.kubernetes.io/instance": db,
           "app.kubernetes.io/managed-by": "kubedb.com"})
}

pub fn pvc(name: &str, labels: Value, class: &str, size: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": name, "namespace": "demo", "labels": labels},
           "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": size}}},
           "status": {"phase": "Bound", "capacity": {"storage": size}}})
}

pub fn redis(name: &str, storage_type: &str, class: &str, size: &str) -> Value {
    json!({"apiVersion": "kubedb.com/v1", "kind": "Redis",
           "metadata": {"name": name, "namespace": "demo"},
           "spec": {"version": "7.2.4", "mode": "Cluster", "cluster": {"shards": 2, "replicas": 2},
                    "storageType": storage_type,
                    "storage": {"storageClassName": class, "resources": {"requests": {"storage": size}}}},
           "status": {"phase": "Ready"}})
}

/// The cluster the webhook sees, as JSON objects per cache.
#[derive(Clone, Debug)]
pub struct World {
    pub redis: Vec<Value>,
    pub zookeeper: Vec<Value>,
    pub redis_ops: Vec<Value>,
    pub zookeeper_ops: Vec<Value>,
    pub pvcs: Vec<Value>,
    pub classes: Vec<Value>,
    pub quotas: Vec<Value>,
    pub namespaces: Vec<Value>,
    pub policies: Vec<Value>,
}

impl World {
    /// Namespace `demo` (tenant=a); Redis cluster `rd` (2 shards x 2) at 1Gi on class `fast`
    /// (expandable) with four Bound 1Gi PVCs; class `fixed` (not expandable, default);
    /// ZooKeeper `zk` (3 nodes, 1Gi on `fast`).
    pub fn standard() -> Self {
        let mut pvcs: Vec<Value> = [
            "data-rd-shard0-0",
            "data-rd-shard0-1",
            "data-rd-shard1-0",
            "data-rd-shard1-1",
        ]
        .iter()
        .map(|n| pvc(n, redis_labels("rd"), "fast", "1Gi"))
        .collect();
        let zk_labels = json!({"app.kubernetes.io/name": "zookeepers.kubedb.com", "app.kubernetes.io/instance": "zk",
                               "app.kubernetes.io/managed-by": "kubedb.com"});
        pvcs.extend((0..3).map(|i| pvc(&format!("zk-data-zk-{i}"), zk_labels.clone(), "fast", "1Gi")));
        Self {
            redis: vec![redis("rd", "Durable", "fast", "1Gi")],
            zookeeper: vec![json!({"apiVersion": "kubedb.com/v1alpha2", "kind": "ZooKeeper",
                "metadata": {"name": "zk", "namespace": "demo"},
                "spec": {"replicas": 3, "storage": {"storageClassName": "fast",
                         "resources": {"requests": {"storage": "1Gi"}}}}})],
            redis_ops: vec![],
            zookeeper_ops: vec![],
            pvcs,
            classes: vec![
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
                       "provisioner": "csi.example", "allowVolumeExpansion": true}),
                json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                       "metadata": {"name": "fixed",
                                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                       "provisioner": "csi.example", "allowVolumeExpansion": false}),
            ],
            quotas: vec![],
            namespaces: vec![json!({"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": "demo", "labels": {"tenant": "a"}}})],
            policies: vec![],
        }
    }

    /// Real caches holding this world (every cache synced).
    pub fn caches(&self) -> Caches {
        let (caches, w) = Caches::new();
        let Writers {
            mut redis,
            mut zookeeper,
            mut redis_ops,
            mut zookeeper_ops,
            mut pvcs,
            mut classes,
            mut quotas,
            mut namespaces,
            mut policies,
        } = w;
        fill(&mut redis, &self.redis);
        fill(&mut zookeeper, &self.zookeeper);
        fill(&mut redis_ops, &self.redis_ops);
        fill(&mut zookeeper_ops, &self.zookeeper_ops);
        fill(&mut pvcs, &self.pvcs);
        fill(&mut classes, &self.classes);
        fill(&mut quotas, &self.quotas);
        fill(&mut namespaces, &self.namespaces);
        fill(&mut policies, &self.policies);
        caches
    }

    pub fn router(&self, options: RuleOptions) -> Router {
        let state = Arc::new(AppState {
            caches: self.caches(),
            options,
            metrics: Arc::new(Metrics::new()),
        });
        router(state, Duration::from_secs(5))
    }
}

/// Applies a full initial list to a store, as a reflector does after its first list.
pub fn fill<K>(writer: &mut impl ApplyEvent<K>, objects: &[Value])
where
    K: DeserializeOwned,
{
    writer.apply_event(&Event::Init);
    for o in objects {
        let obj: K = serde_json::from_value(o.clone()).unwrap_or_else(|e| panic!("fixture {o}: {e}"));
        writer.apply_event(&Event::InitApply(obj));
    }
    writer.apply_event(&Event::InitDone);
}

/// A RedisOpsRequest `grow` in `demo` for database `db` growing to `size`, as mutated (mode set).
pub fn redis_ops(db: &str, size: &str) -> Value {
    json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
           "metadata": {"name": "grow", "namespace": "demo"},
           "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db},
                    "volumeExpansion": {"mode": "Online", "redis": size}}})
}

/// Review builder.
pub struct Review {
    pub uid: String,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub operation: &'static str,
    pub sub_resource: Option<&'static str>,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub dry_run: bool,
    /// `userInfo.username` (the tests' tenant unless set).
    pub username: &'static str,
}

impl Review {
    pub fn new(kind: &'static str, operation: &'static str, object: Option<Value>) -> Self {
        let (group, version) = match kind {
            "RedisOpsRequest" | "ZooKeeperOpsRequest" => ("ops.kubedb.com", "v1alpha1"),
            "VolumeExpansionPolicy" => ("volops.dev", "v1alpha1"),
            "RedisAutoscaler" | "ZooKeeperAutoscaler" => ("autoscaling.kubedb.com", "v1alpha1"),
            "Redis" => ("kubedb.com", "v1"),
            "ZooKeeper" => ("kubedb.com", "v1alpha2"),
            _ => ("", "v1"),
        };
        Self {
            uid: "705ab4f5-6393-11e8-b7cc-42010a800002".into(),
            group,
            version,
            kind,
            operation,
            sub_resource: None,
            object,
            old_object: None,
            dry_run: false,
            username: "alice",
        }
    }

    pub fn create_redis_ops(obj: Value) -> Self {
        Self::new("RedisOpsRequest", "CREATE", Some(obj))
    }

    pub fn to_json(&self) -> Value {
        let name = self
            .object
            .as_ref()
            .or(self.old_object.as_ref())
            .and_then(|o| o.pointer("/metadata/name"))
            .cloned()
            .unwrap_or(json!(""));
        let mut req = json!({
            "uid": self.uid,
            "kind": {"group": self.group, "version": self.version, "kind": self.kind},
            "resource": {"group": self.group, "version": self.version, "resource": self.kind.to_lowercase()},
            "name": name, "namespace": "demo", "operation": self.operation,
            "userInfo": {"username": self.username, "groups": ["system:authenticated"]},
            "object": self.object, "oldObject": self.old_object, "dryRun": self.dry_run,
        });
        if let Some(s) = self.sub_resource {
            req["subResource"] = json!(s);
        }
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
    }
}

/// POSTs raw bytes to `path`; returns status and body bytes.
pub async fn post_raw(app: &Router, path: &str, body: Vec<u8>) -> (http::StatusCode, Vec<u8>) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, bytes)
}

/// POSTs a review and returns the parsed `response`.
pub async fn post(app: &Router, path: &str, review: &Review) -> Value {
    let (status, body) = post_raw(app, path, serde_json::to_vec(&review.to_json()).unwrap()).await;
    assert_eq!(status, 200, "body: {}", String::from_utf8_lossy(&body));
    let out: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(out["response"]["uid"], review.uid.as_str(), "uid must be echoed");
    out["response"].clone()
}

pub async fn validate(world: &World, review: &Review) -> Value {
    post(&world.router(RuleOptions::default()), "/validate", review).await
}

/// Asserts a denial with `code` and exactly `message`.
pub fn assert_denied(resp: &Value, code: u16, message: &str) {
    assert_eq!(resp["allowed"], false, "{resp}");
    assert_eq!(resp["status"]["code"], code, "{resp}");
    assert_eq!(
        resp["status"]["reason"],
        if code == 422 { "Invalid" } else { "Forbidden" }
    );
    assert_eq!(resp["status"]["message"], message);
    assert!(
        resp.get("patch").is_none() && resp.get("patchType").is_none(),
        "validating responses carry no patch"
    );
}

pub fn assert_allowed(resp: &Value) {
    assert_eq!(resp["allowed"], true, "{resp}");
    assert!(resp.get("status").is_none(), "{resp}");
}

pub fn warnings(resp: &Value) -> Vec<String> {
    resp.get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
