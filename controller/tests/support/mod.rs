//! Helpers for the end-to-end tests (`mod support;` in each test): a sandbox with the simulated
//! cluster, the CRDs, a controller running in-process, watch-based waits.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{fmt::Debug, sync::Arc, time::Duration};

use k8s_openapi::{
    api::{core::v1::Namespace, storage::v1::StorageClass},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Resource,
    api::{ApiResource, DynamicObject, PostParams},
    runtime::wait::await_condition,
};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::oneshot;
use volops_controller::{Config, Metrics, PauseHandshake};
use volops_sandbox::{ClusterConfig, RedisWorkload, Sandbox, SandboxOptions};

pub const WAIT: Duration = Duration::from_secs(60);
/// Where the in-process controllers keep their saved state (the chart's release namespace).
pub const STATE_NS: &str = "volops-system";
/// The tenant of the tests' namespaces (COMMON identities).
pub const TENANT: &str = "alice";

/// A client acting as the tenant: what anyone allowed to create ops requests in their own
/// namespaces can do. The tenant is bound to Kubernetes' `edit` role in every namespace that
/// exists when this is called, except the controller's own ([`STATE_NS`]); `edit` is extended
/// by aggregation with the ops requests and databases, as the chart's tenant roles do (the
/// chart's exact roles are what `tests/e2e` runs under).
pub async fn tenant_client(sb: &Sandbox) -> kube::Client {
    let admin = sb.client().await.expect("admin client");
    apply_rbac(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "test-tenant-volops",
                            "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
               "rules": [{"apiGroups": ["ops.kubedb.com"],
                          "resources": ["redisopsrequests", "zookeeperopsrequests"],
                          "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                         {"apiGroups": ["kubedb.com"], "resources": ["redises", "zookeepers"],
                          "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]}),
    )
    .await;
    let nss: Api<Namespace> = Api::all(admin.clone());
    for ns in nss.list(&Default::default()).await.expect("namespaces").items {
        let name = ns.metadata.name.unwrap_or_default();
        if name == STATE_NS || name.starts_with("kube-") || name == "default" {
            continue;
        }
        apply_rbac(
            &admin,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "tenant-edit", "namespace": name},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT}]}),
        )
        .await;
    }
    sb.client_as(TENANT, &["tenants", "system:authenticated"])
        .await
        .expect("tenant client")
}

/// A client acting as the chart's controller ServiceAccount, bound to `cluster-admin`: these
/// tests are about what the controller does with what tenants write; the chart's exact RBAC
/// is what `tests/e2e` runs the controller under.
pub async fn controller_client(sb: &Sandbox) -> kube::Client {
    let admin = sb.client().await.expect("admin client");
    apply_rbac(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "test-volops-controller"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": "volops-controller",
                             "namespace": STATE_NS}]}),
    )
    .await;
    sb.client_as(
        "system:serviceaccount:volops-system:volops-controller",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:volops-system",
            "system:authenticated",
        ],
    )
    .await
    .expect("controller client")
}

/// Creates an RBAC object (or leaves the one already there).
async fn apply_rbac(admin: &kube::Client, obj: serde_json::Value) {
    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
    let ar = ApiResource {
        group: "rbac.authorization.k8s.io".into(),
        version: "v1".into(),
        api_version: "rbac.authorization.k8s.io/v1".into(),
        plural: format!("{}s", kind.to_lowercase()),
        kind,
    };
    let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
        None => Api::all_with(admin.clone(), &ar),
    };
    let obj: DynamicObject = serde_json::from_value(obj).expect("an RBAC object");
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("creating {:?}: {e}", obj.metadata.name),
    }
}

/// A sandbox whose KubeDB-like provisioner runs Redis on PetSets, as current KubeDB does.
pub async fn sandbox() -> (Sandbox, kube::Client) {
    sandbox_with(ClusterConfig::fast()).await
}

/// A sandbox whose provisioner runs Redis on StatefulSets, as older KubeDB releases did.
pub async fn sandbox_on_statefulsets() -> (Sandbox, kube::Client) {
    sandbox_with(ClusterConfig::fast().with_redis_workload(RedisWorkload::StatefulSet)).await
}

pub async fn sandbox_with(config: ClusterConfig) -> (Sandbox, kube::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // RUST_LOG=volops_controller=debug shows the controller's steps when a test needs a look.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let sb = Sandbox::start(SandboxOptions {
        cluster: Some(config),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let client = sb.client().await.expect("client");
    (sb, client)
}

/// Namespace, the controller's state namespace, an expandable StorageClass of `mode`, and
/// every volops CRD.
pub async fn setup(client: &kube::Client, ns: &str, class: &str, mode: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    for name in [ns, STATE_NS] {
        let _ = nss
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await;
    }
    storage_class(client, class, mode, 20).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in volops_shared::crd::all().expect("crds") {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("crd created");
    }
}

/// An expandable StorageClass whose simulated driver resizes in `mode`, each step taking
/// `delay_ms`.
pub async fn storage_class(client: &kube::Client, name: &str, mode: &str, delay_ms: u64) {
    let scs: Api<StorageClass> = Api::all(client.clone());
    let sc: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": name},
        "provisioner": "sandbox.volops.dev/csi",
        "allowVolumeExpansion": true,
        "volumeBindingMode": "Immediate",
        "parameters": {"sandbox.volops.dev/resize-mode": mode,
                       "sandbox.volops.dev/resize-delay-ms": delay_ms.to_string()}
    }))
    .unwrap();
    scs.create(&PostParams::default(), &sc)
        .await
        .expect("storage class");
}

pub fn dynamic(
    client: &kube::Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// A controller running in this process until the returned sender is dropped or fired.
pub fn start_controller(
    client: kube::Client,
    metrics: Arc<Metrics>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let config = Config {
        pause_handshake: PauseHandshake::Kubedb,
        ..Config::default()
    };
    start_controller_with(client, metrics, config)
}

/// [`start_controller`] with a given configuration.
pub fn start_controller_with(
    client: kube::Client,
    metrics: Arc<Metrics>,
    config: Config,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        volops_controller::run_with_metrics(client, config, metrics, async move {
            let _ = rx.await;
        })
        .await
        .expect("controller runs");
    });
    (tx, task)
}

/// Waits (watch-based) until `cond` holds for the named object.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let fut = await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond));
    match tokio::time::timeout(WAIT, fut).await {
        Ok(Ok(Some(o))) => o,
        Ok(other) => panic!("waiting for {what}: {other:?}"),
        Err(_) => {
            let last = api.get_opt(name).await;
            panic!("timed out waiting for {what}; last: {last:?}")
        }
    }
}

/// The PetSets of `ns`: the workloads of every database in the default sandbox.
pub fn petsets(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    dynamic(client, ns, "apps.k8s.appscode.com", "v1", "PetSet", "petsets")
}

pub fn at<'a>(o: &'a DynamicObject, pointer: &str) -> Option<&'a str> {
    o.data.pointer(pointer).and_then(|v| v.as_str())
}

/// Creates a Redis (`mode`: Standalone or Cluster 3x2) or a 3-node ZooKeeper of 1Gi on `class`
/// and waits until it is Ready.
pub async fn database(
    client: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
    class: &str,
) -> Api<DynamicObject> {
    let storage = json!({"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}});
    let (api, obj) = match kind {
        "ZooKeeper" => (
            dynamic(client, ns, "kubedb.com", "v1alpha2", "ZooKeeper", "zookeepers"),
            json!({"apiVersion": "kubedb.com/v1alpha2", "kind": "ZooKeeper",
                   "metadata": {"name": name, "namespace": ns},
                   "spec": {"version": "3.9.1", "replicas": 3, "storage": storage}}),
        ),
        mode => (
            dynamic(client, ns, "kubedb.com", "v1", "Redis", "redises"),
            json!({"apiVersion": "kubedb.com/v1", "kind": "Redis", "metadata": {"name": name, "namespace": ns},
                   "spec": {"version": "7.2.4", "mode": mode, "cluster": {"shards": 3, "replicas": 2},
                            "storage": storage}}),
        ),
    };
    api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap())
        .await
        .expect("database created");
    wait_for(&api, name, "database Ready", |o| {
        at(o, "/status/phase") == Some("Ready")
    })
    .await;
    api
}

/// An ops request of `kind` (RedisOpsRequest or ZooKeeperOpsRequest) growing `db` to `size`.
pub fn ops_request(
    kind: &str,
    name: &str,
    db: &str,
    mode: &str,
    size: &str,
    extra: serde_json::Value,
) -> DynamicObject {
    let field = if kind == "RedisOpsRequest" {
        "redis"
    } else {
        "node"
    };
    let mut spec = json!({"type": "VolumeExpansion", "databaseRef": {"name": db},
                          "volumeExpansion": {"mode": mode, field: size}});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": kind,
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

pub fn ops_api(client: &kube::Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let plural = if kind == "RedisOpsRequest" {
        "redisopsrequests"
    } else {
        "zookeeperopsrequests"
    };
    dynamic(client, ns, "ops.kubedb.com", "v1alpha1", kind, plural)
}

/// Runs a controller while one RedisOpsRequest `grow` expands `db` in namespace `db` to `size`;
/// returns the request once it is final, with the controller stopped.
pub async fn grow_redis(client: &kube::Client, db: &str, mode: &str, size: &str) -> DynamicObject {
    let (stop, task) = start_controller(client.clone(), Arc::new(Metrics::default()));
    let ops = ops_api(client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "grow", db, mode, size, json!({})),
    )
    .await
    .expect("ops request created");
    let done = wait_final(&ops, "grow").await;
    let _ = stop.send(());
    task.await.expect("controller task");
    done
}

/// Waits until the request is in a final phase with its finalizer gone; returns it.
pub async fn wait_final(api: &Api<DynamicObject>, name: &str) -> DynamicObject {
    wait_for(api, name, "request finished", |r| {
        matches!(at(r, "/status/phase"), Some("Successful" | "Failed" | "Skipped"))
            && r.metadata.finalizers.as_ref().is_none_or(Vec::is_empty)
    })
    .await
}

/// The database's conditions of type Paused (there should be none once a request ends).
pub fn paused_conditions(db: &DynamicObject) -> Vec<serde_json::Value> {
    db.data
        .pointer("/status/conditions")
        .and_then(|v| v.as_array())
        .map(|cs| cs.iter().filter(|c| c["type"] == "Paused").cloned().collect())
        .unwrap_or_default()
}

/// The PVC resize patches a controller made.
pub fn expansions(metrics: &Metrics, kind: &str) -> u64 {
    metrics
        .pvc_expansions
        .get_or_create(&volops_controller::metrics::KindLabels { kind: kind.into() })
        .get()
}

pub fn has_condition(r: &DynamicObject, type_: &str) -> bool {
    r.data["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}

pub fn condition_time(r: &DynamicObject, type_: &str) -> Option<String> {
    r.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(str::to_owned)
}

/// The events about the named object in `ns`, as (type, reason, note, series count).
pub async fn events_about(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, String, String, i32)> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
                e.series.map_or(1, |s| s.count),
            )
        })
        .collect()
}

/// The condition of `type_` on the request, if any.
pub fn condition<'a>(r: &'a DynamicObject, type_: &str) -> Option<&'a serde_json::Value> {
    r.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// The message of the request's condition `type_` ("" if none).
pub fn condition_message(r: &DynamicObject, type_: &str) -> String {
    condition(r, type_)
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The request's failure in KubeDB's shape, as (the step volops's `Cleanup` condition names,
/// the message of `VolumeExpansion` with reason Failed); empty strings when it has none.
pub fn failure(r: &DynamicObject) -> (String, String) {
    let failed = r.data["status"]["conditions"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "VolumeExpansion" && c["reason"] == "Failed" && c["status"] == "True")
        })
        .cloned()
        .unwrap_or_default();
    let step = condition(r, "Cleanup")
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_owned();
    (step, failed["message"].as_str().unwrap_or_default().to_owned())
}

/// The message of the request's failure (KubeDB's shape; "" if none).
pub fn failure_message(r: &DynamicObject) -> String {
    failure(r).1
}

/// The controller's saved state for the request with this UID, if any.
pub async fn saved_state(
    client: &kube::Client,
    request_uid: &str,
) -> Option<volops_controller::saved::SavedState> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), STATE_NS);
    let secret = secrets
        .get_opt(&volops_controller::saved::secret_name(request_uid))
        .await
        .unwrap()?;
    Some(volops_controller::saved::SavedState::from_secret(&secret).expect("a readable saved state"))
}

/// Polls the saved state of the request with this UID until `cond` holds (or `give_up` holds
/// for the request); returns whether `cond` held.
pub async fn wait_saved(
    client: &kube::Client,
    ops: &Api<DynamicObject>,
    name: &str,
    what: &str,
    cond: impl Fn(&volops_controller::saved::SavedState) -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let r = ops.get(name).await.unwrap();
        let uid = r.metadata.uid.clone().unwrap();
        if saved_state(client, &uid).await.is_some_and(|s| cond(&s)) {
            return true;
        }
        if at(&r, "/status/phase").is_some_and(|p| p != "Progressing" && p != "Pending") {
            return false;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
