//! Pure KubeDB naming and object building (docs/KUBEDB.md).

use crate::util::{controller_ref, redis_ar, zookeeper_ar};
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Which KubeDB database kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Redis,
    ZooKeeper,
}

impl DbKind {
    /// The DB resource.
    pub fn ar(self) -> ApiResource {
        match self {
            Self::Redis => redis_ar(),
            Self::ZooKeeper => zookeeper_ar(),
        }
    }

    /// `app.kubernetes.io/name` value.
    pub fn name_label(self) -> &'static str {
        match self {
            Self::Redis => "redises.kubedb.com",
            Self::ZooKeeper => "zookeepers.kubedb.com",
        }
    }

    fn port(self) -> (&'static str, i64) {
        match self {
            Self::Redis => ("db", 6379),
            Self::ZooKeeper => ("client", 2181),
        }
    }
}

/// A workload to create.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub replicas: i64,
    pub object: Value,
}

/// KubeDB's selector labels for a DB.
pub fn selector(kind: DbKind, db: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name".to_owned(), kind.name_label().to_owned()),
        ("app.kubernetes.io/instance".to_owned(), db.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "kubedb.com".to_owned()),
    ]
    .into()
}

fn int(spec: &Value, pointer: &str, default: i64) -> i64 {
    spec.pointer(pointer).and_then(Value::as_i64).unwrap_or(default)
}

/// The workloads KubeDB would run for `db`, built from its current spec, of kind `ar`
/// (PetSet, or StatefulSet for older KubeDB's Redis).
pub fn workloads(kind: DbKind, ar: &ApiResource, db: &DynamicObject) -> Vec<Workload> {
    let name = db.name_any();
    let spec = db.data.get("spec").cloned().unwrap_or(Value::Null);
    match kind {
        DbKind::Redis => {
            let ephemeral = spec.get("storageType").and_then(Value::as_str) == Some("Ephemeral");
            let claim = (!ephemeral).then_some("data");
            if spec.get("mode").and_then(Value::as_str) == Some("Cluster") {
                let shards = int(&spec, "/cluster/shards", 3);
                let replicas = int(&spec, "/cluster/replicas", 2);
                (0..shards)
                    .map(|i| {
                        let mut sel = selector(kind, &name);
                        sel.insert("redis.kubedb.com/shard".into(), i.to_string());
                        workload(
                            kind,
                            ar,
                            db,
                            &format!("{name}-shard{i}"),
                            replicas,
                            sel,
                            claim,
                            &spec,
                        )
                    })
                    .collect()
            } else {
                let replicas = int(&spec, "/replicas", 1);
                vec![workload(
                    kind,
                    ar,
                    db,
                    &name,
                    replicas,
                    selector(kind, &name),
                    claim,
                    &spec,
                )]
            }
        }
        DbKind::ZooKeeper => {
            let replicas = int(&spec, "/replicas", 1);
            let claim = format!("{name}-data");
            vec![workload(
                kind,
                ar,
                db,
                &name,
                replicas,
                selector(kind, &name),
                Some(&claim),
                &spec,
            )]
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn workload(
    kind: DbKind,
    ar: &ApiResource,
    db: &DynamicObject,
    set: &str,
    replicas: i64,
    sel: BTreeMap<String, String>,
    claim: Option<&str>,
    spec: &Value,
) -> Workload {
    let db_name = db.name_any();
    let mut labels = sel.clone();
    labels.insert("app.kubernetes.io/component".into(), "database".into());
    let volume = claim.unwrap_or("data");
    let (port_name, port) = kind.port();
    let version = spec.get("version").and_then(Value::as_str).unwrap_or("latest");
    let image = match kind {
        DbKind::Redis => format!("redis:{version}"),
        DbKind::ZooKeeper => format!("zookeeper:{version}"),
    };
    let container = match kind {
        DbKind::Redis => "redis",
        DbKind::ZooKeeper => "zookeeper",
    };
    let mut pod_spec = json!({
        "containers": [{
            "name": container,
            "image": image,
            "ports": [{"name": port_name, "containerPort": port}],
            "volumeMounts": [{"name": volume, "mountPath": "/data"}]
        }],
        "terminationGracePeriodSeconds": 30
    });
    // As KubeDB does, the settings of the database's container in `spec.podTemplate` (env,
    // resources) go into the workload's pod template.
    if let Some(settings) = spec
        .pointer("/podTemplate/spec/containers")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["name"] == container))
    {
        for field in ["env", "resources"] {
            if let Some(v) = settings.get(field) {
                pod_spec["containers"][0][field] = v.clone();
            }
        }
    }
    let mut set_spec = json!({
        "replicas": replicas,
        "serviceName": format!("{db_name}-pods"),
        "podManagementPolicy": "OrderedReady",
        "selector": {"matchLabels": sel},
        "template": {"metadata": {"labels": labels}, "spec": Value::Null},
    });
    match claim {
        Some(c) => {
            let storage = spec.get("storage").cloned().unwrap_or_else(|| json!({}));
            set_spec["volumeClaimTemplates"] = json!([{"metadata": {"name": c}, "spec": storage}]);
        }
        None => pod_spec["volumes"] = json!([{"name": volume, "emptyDir": {}}]),
    }
    set_spec["template"]["spec"] = pod_spec;
    let owner = controller_ref(&kind.ar(), &db_name, &db.uid().unwrap_or_default());
    let object = json!({
        "apiVersion": ar.api_version,
        "kind": ar.kind,
        "metadata": {
            "name": set,
            "namespace": db.namespace().unwrap_or_default(),
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": set_spec,
    });
    Workload {
        name: set.to_owned(),
        replicas,
        object,
    }
}

/// The governing Service `<db>-pods` and the primary Service `<db>`.
pub fn services(kind: DbKind, db: &DynamicObject) -> Vec<Value> {
    let name = db.name_any();
    let ns = db.namespace().unwrap_or_default();
    let sel = selector(kind, &name);
    let owner = controller_ref(&kind.ar(), &name, &db.uid().unwrap_or_default());
    let (port_name, port) = kind.port();
    let svc = |svc_name: String, headless: bool| {
        let mut spec =
            json!({"selector": sel, "ports": [{"name": port_name, "port": port, "targetPort": port}]});
        if headless {
            spec["clusterIP"] = json!("None");
            spec["publishNotReadyAddresses"] = json!(true);
        }
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": svc_name, "namespace": ns, "labels": sel, "ownerReferences": [owner]},
            "spec": spec
        })
    };
    vec![svc(name.clone(), false), svc(format!("{name}-pods"), true)]
}

/// One workload's observed state.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    pub exists: bool,
    pub desired: i64,
    pub ready: i64,
}

/// status.phase from the workloads: Ready when every pod is Ready; before the first Ready,
/// Provisioning; afterwards Critical when some are Ready, NotReady when none is.
pub fn phase(current: Option<&str>, sets: &[Observed]) -> &'static str {
    let all_ready = !sets.is_empty() && sets.iter().all(|s| s.exists && s.ready >= s.desired);
    if all_ready {
        return "Ready";
    }
    if matches!(current, None | Some("") | Some("Provisioning")) {
        return "Provisioning";
    }
    if sets.iter().any(|s| s.ready > 0) {
        "Critical"
    } else {
        "NotReady"
    }
}

/// The `Paused` condition's status, if present.
pub fn paused_status(db: &DynamicObject) -> Option<String> {
    db.data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Paused"))?
        .get("status")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::{petset_ar, statefulset_ar};

    fn db(kind: DbKind, spec: Value) -> DynamicObject {
        let ar = kind.ar();
        serde_json::from_value(json!({
            "apiVersion": ar.api_version, "kind": ar.kind,
            "metadata": {"name": "db", "namespace": "ns", "uid": "dbuid"},
            "spec": spec
        }))
        .expect("valid db")
    }

    #[test]
    fn redis_cluster_has_one_petset_per_shard() {
        let d = db(
            DbKind::Redis,
            json!({"mode": "Cluster", "version": "7", "storage": {"resources": {"requests": {"storage": "1Gi"}}}}),
        );
        let ws = workloads(DbKind::Redis, &petset_ar(), &d);
        let names: Vec<&str> = ws.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["db-shard0", "db-shard1", "db-shard2"]);
        assert!(ws.iter().all(|w| w.replicas == 2));
        let o = &ws[1].object;
        assert_eq!(o["kind"], "PetSet");
        assert_eq!(o["apiVersion"], "apps.k8s.appscode.com/v1");
        assert_eq!(
            o["spec"]["selector"]["matchLabels"]["redis.kubedb.com/shard"],
            "1"
        );
        assert_eq!(
            o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
            "db"
        );
        assert_eq!(o["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "data");
        assert_eq!(
            o["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "1Gi"
        );
        assert_eq!(o["metadata"]["ownerReferences"][0]["kind"], "Redis");
        assert_eq!(o["metadata"]["ownerReferences"][0]["blockOwnerDeletion"], true);
    }

    #[test]
    fn redis_sentinel_mode_is_one_petset_named_after_the_database() {
        // The docs' redis_sentinel_redis.yaml: mode Sentinel, 3 replicas, a sentinelRef.
        let d = db(
            DbKind::Redis,
            json!({"mode": "Sentinel", "version": "8.2.2", "replicas": 3,
                   "sentinelRef": {"name": "sen-demo", "namespace": "demo"},
                   "storage": {"resources": {"requests": {"storage": "1Gi"}}}}),
        );
        let ws = workloads(DbKind::Redis, &petset_ar(), &d);
        assert_eq!(ws.len(), 1);
        assert_eq!((ws[0].name.as_str(), ws[0].replicas), ("db", 3));
        assert_eq!(ws[0].object["kind"], "PetSet");
        assert_eq!(
            ws[0].object["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
            "data"
        );
    }

    #[test]
    fn redis_on_statefulsets_is_the_same_layout_under_the_older_kind() {
        let spec = json!({"mode": "Cluster", "version": "7", "storage": {"resources": {"requests": {"storage": "1Gi"}}}});
        let d = db(DbKind::Redis, spec);
        let pets = workloads(DbKind::Redis, &petset_ar(), &d);
        let sets = workloads(DbKind::Redis, &statefulset_ar(), &d);
        assert_eq!(sets.len(), 3);
        for (p, s) in pets.iter().zip(&sets) {
            assert_eq!(s.object["kind"], "StatefulSet");
            assert_eq!(s.object["apiVersion"], "apps/v1");
            assert_eq!(p.name, s.name);
            assert_eq!(p.object["spec"], s.object["spec"]);
        }
    }

    #[test]
    fn the_pod_template_settings_of_the_database_container_are_kept() {
        let d = db(
            DbKind::Redis,
            json!({"version": "7", "podTemplate": {"spec": {"containers": [
                {"name": "sidecar", "env": [{"name": "NO", "value": "x"}]},
                {"name": "redis", "env": [{"name": "A", "value": "1"}],
                 "resources": {"limits": {"memory": "1Gi"}}}]}}}),
        );
        let ws = workloads(DbKind::Redis, &petset_ar(), &d);
        let c = &ws[0].object["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["name"], "redis");
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    }

    #[test]
    fn redis_standalone_and_ephemeral() {
        let d = db(
            DbKind::Redis,
            json!({"version": "7", "replicas": 3, "storageType": "Ephemeral"}),
        );
        let ws = workloads(DbKind::Redis, &petset_ar(), &d);
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].name, "db");
        assert_eq!(ws[0].replicas, 3);
        assert!(ws[0].object["spec"].get("volumeClaimTemplates").is_none());
        assert_eq!(
            ws[0].object["spec"]["template"]["spec"]["volumes"][0]["emptyDir"],
            json!({})
        );
    }

    #[test]
    fn zookeeper_is_a_petset_with_db_data_claims() {
        let d = db(
            DbKind::ZooKeeper,
            json!({"version": "3.9", "replicas": 3, "storage": {}}),
        );
        let ws = workloads(DbKind::ZooKeeper, &petset_ar(), &d);
        assert_eq!(ws[0].object["kind"], "PetSet");
        assert_eq!(ws[0].object["apiVersion"], "apps.k8s.appscode.com/v1");
        assert_eq!(
            ws[0].object["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
            "db-data"
        );
        assert_eq!(
            ws[0].object["metadata"]["labels"]["app.kubernetes.io/name"],
            "zookeepers.kubedb.com"
        );
        let svcs = services(DbKind::ZooKeeper, &d);
        assert_eq!(svcs[1]["metadata"]["name"], "db-pods");
        assert_eq!(svcs[1]["spec"]["clusterIP"], "None");
    }

    #[test]
    fn phase_follows_readiness() {
        let ok = Observed {
            exists: true,
            desired: 2,
            ready: 2,
        };
        let half = Observed {
            exists: true,
            desired: 2,
            ready: 1,
        };
        let none = Observed {
            exists: true,
            desired: 2,
            ready: 0,
        };
        assert_eq!(phase(None, &[half]), "Provisioning");
        assert_eq!(phase(Some("Provisioning"), &[ok, ok]), "Ready");
        assert_eq!(phase(Some("Ready"), &[ok, half]), "Critical");
        assert_eq!(phase(Some("Ready"), &[none]), "NotReady");
        assert_eq!(phase(Some("Ready"), &[]), "NotReady");
    }

    #[test]
    fn paused_condition_is_found() {
        let mut d = db(DbKind::Redis, json!({}));
        assert_eq!(paused_status(&d), None);
        d.data["status"] = json!({"conditions": [{"type": "Other", "status": "True"}, {"type": "Paused", "status": "Unknown"}]});
        assert_eq!(paused_status(&d).as_deref(), Some("Unknown"));
    }
}
