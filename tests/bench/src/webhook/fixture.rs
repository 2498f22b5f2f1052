//! The objects the benchmark creates (pure): namespaces of 20 databases each, a mix of Redis
//! cluster / standalone / Ephemeral and ZooKeeper, every database with its bound 1Gi PVCs as
//! KubeDB names them, one ResourceQuota per namespace, StorageClasses and policies.
//!
//! Each namespace holds the same 20 slots, so the review mix can pick a database whose state
//! gives a known answer (an expandable class, the fixed class, Ephemeral, ...).

use serde_json::{Value, json};
use volops_shared::{DatabaseKind, Topology, descriptor::workloads};

pub const DBS_PER_NAMESPACE: usize = 20;
/// PVCs of one full namespace (see [`Shape::of_slot`]).
pub const PVCS_PER_NAMESPACE: usize = 120;
/// Expandable, the cluster default.
pub const CLASS_FAST: &str = "bench-fast";
/// Expandable.
pub const CLASS_STANDARD: &str = "bench-standard";
/// Not expandable.
pub const CLASS_FIXED: &str = "bench-fixed";
pub const PROVISIONER: &str = "sandbox.volops.dev/csi";
/// Every volume's size.
pub const VOLUME_SIZE: &str = "1Gi";
/// `requests.storage` of each namespace's quota; a namespace uses 120Gi.
pub const QUOTA_TOTAL: &str = "1000Gi";
/// The fast class's share of that quota.
pub const QUOTA_FAST: &str = "900Gi";
/// maxSize of the Deny policy that selects every bench namespace.
pub const POLICY_MAX_SIZE: &str = "100Gi";
pub const POLICY_DENY: &str = "bench-tenant-limits";
pub const POLICY_WARN: &str = "bench-gold-advice";
/// Label the Deny policy selects on.
pub const TENANT_LABEL: &str = "tenant";

/// The shape of one database slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    RedisCluster {
        shards: i32,
        replicas: i32,
    },
    RedisStandalone {
        replicas: i32,
    },
    /// Redis with `storageType: Ephemeral`: no PVCs, cannot be expanded.
    RedisEphemeral,
    ZooKeeper {
        replicas: i32,
    },
}

impl Shape {
    /// Slots 0-7 Redis clusters (4 shards x 3), 8 Ephemeral Redis, 9 standalone x 2, 10-13
    /// standalone, 14-19 ZooKeeper x 3: 96 + 0 + 2 + 4 + 18 = 120 PVCs a namespace.
    pub fn of_slot(slot: usize) -> Shape {
        match slot % DBS_PER_NAMESPACE {
            0..=7 => Shape::RedisCluster {
                shards: 4,
                replicas: 3,
            },
            8 => Shape::RedisEphemeral,
            9 => Shape::RedisStandalone { replicas: 2 },
            10..=13 => Shape::RedisStandalone { replicas: 1 },
            _ => Shape::ZooKeeper { replicas: 3 },
        }
    }

    pub fn kind(self) -> DatabaseKind {
        match self {
            Shape::ZooKeeper { .. } => DatabaseKind::ZooKeeper,
            _ => DatabaseKind::Redis,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Shape::RedisCluster { .. } => "rc",
            Shape::RedisStandalone { .. } => "rs",
            Shape::RedisEphemeral => "eph",
            Shape::ZooKeeper { .. } => "zk",
        }
    }

    pub fn topology(self) -> Option<Topology> {
        match self {
            Shape::RedisCluster { shards, replicas } => Some(Topology::RedisCluster { shards, replicas }),
            Shape::RedisStandalone { replicas } => Some(Topology::RedisSingle { replicas }),
            Shape::RedisEphemeral => None,
            Shape::ZooKeeper { replicas } => Some(Topology::ZooKeeper { replicas }),
        }
    }
}

/// The class of a slot's volumes: slot 1 on the standard class, slot 15 on the fixed one.
pub fn class_of_slot(slot: usize) -> &'static str {
    match slot % DBS_PER_NAMESPACE {
        1 => CLASS_STANDARD,
        15 => CLASS_FIXED,
        _ => CLASS_FAST,
    }
}

pub fn namespace_name(index: usize) -> String {
    format!("bench-{index:03}")
}

/// One database of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    pub namespace: String,
    pub name: String,
    pub slot: usize,
    pub shape: Shape,
    pub class: &'static str,
}

impl Database {
    pub fn new(namespace_index: usize, slot: usize) -> Database {
        let shape = Shape::of_slot(slot);
        Database {
            namespace: namespace_name(namespace_index),
            name: format!("{}-{slot:02}", shape.prefix()),
            slot,
            shape,
            class: class_of_slot(slot),
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        self.shape.kind()
    }

    /// PVC names and the pod each belongs to, as KubeDB's workloads name them.
    pub fn pvcs(&self) -> Vec<(String, String)> {
        let Some(topology) = self.shape.topology() else {
            return Vec::new();
        };
        // The fixture's shapes are small; a refused topology has no PVCs.
        workloads(self.kind(), &self.name, &topology)
            .unwrap_or_default()
            .iter()
            .flat_map(|w| w.pods().into_iter().map(|pod| (w.pvc_of(&pod), pod)))
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let kind = self.kind();
        let mut spec = json!({
            "version": if kind == DatabaseKind::Redis { "7.4.0" } else { "3.9.1" },
            "deletionPolicy": "Delete",
        });
        let storage = json!({
            "storageClassName": self.class,
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": VOLUME_SIZE}},
        });
        match self.shape {
            Shape::RedisCluster { shards, replicas } => {
                spec["mode"] = json!("Cluster");
                spec["cluster"] = json!({"shards": shards, "replicas": replicas});
                spec["storageType"] = json!("Durable");
                spec["storage"] = storage;
            }
            Shape::RedisStandalone { replicas } => {
                spec["mode"] = json!("Standalone");
                spec["replicas"] = json!(replicas);
                spec["storageType"] = json!("Durable");
                spec["storage"] = storage;
            }
            Shape::RedisEphemeral => {
                spec["mode"] = json!("Standalone");
                spec["storageType"] = json!("Ephemeral");
            }
            Shape::ZooKeeper { replicas } => {
                spec["replicas"] = json!(replicas);
                spec["adminServerPort"] = json!(8080);
                spec["storage"] = storage;
            }
        }
        json!({
            "apiVersion": format!("{}/{}", kind.group(), kind.version()),
            "kind": kind.kind(),
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": spec,
        })
    }

    /// A bound PVC as the StatefulSet/PetSet controller and the provisioner leave it (without
    /// status: the API server drops it on create).
    pub fn pvc_json(&self, name: &str, pod: &str) -> Value {
        let mut labels = self.kind().selector_labels(&self.name);
        labels.insert("app.kubernetes.io/component".into(), "database".into());
        // Every database runs on PetSets, as in current KubeDB.
        labels.insert("apps.k8s.appscode.com/pod-name".into(), pod.into());
        json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {
                    "pv.kubernetes.io/bind-completed": "yes",
                    "pv.kubernetes.io/bound-by-controller": "yes",
                    "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
                    "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                },
                "finalizers": ["kubernetes.io/pvc-protection"],
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": VOLUME_SIZE}},
                "storageClassName": self.class,
                "volumeMode": "Filesystem",
                "volumeName": format!("pvc-{}-{name}", self.namespace),
            },
        })
    }
}

/// The status a bound PVC gets.
pub fn pvc_status() -> Value {
    json!({"status": {
        "phase": "Bound",
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": VOLUME_SIZE},
    }})
}

/// Every database of namespaces `namespaces` (a range of namespace indexes).
pub fn databases(namespaces: std::ops::Range<usize>) -> Vec<Database> {
    namespaces
        .flat_map(|n| (0..DBS_PER_NAMESPACE).map(move |slot| Database::new(n, slot)))
        .collect()
}

/// Namespaces needed for at least `dbs` databases (whole namespaces only).
pub fn namespaces_for_databases(dbs: usize) -> usize {
    dbs.div_ceil(DBS_PER_NAMESPACE).max(1)
}

/// Namespaces needed for at least `pvcs` PVCs.
pub fn namespaces_for_pvcs(pvcs: usize) -> usize {
    pvcs.div_ceil(PVCS_PER_NAMESPACE).max(1)
}

/// Every bench namespace is a tenant (the Deny policy applies); every third is `tier: gold`
/// (the Warn policy applies too).
pub fn namespace_json(index: usize) -> Value {
    let mut labels = json!({TENANT_LABEL: format!("team-{}", index % 7)});
    if index.is_multiple_of(3) {
        labels["tier"] = json!("gold");
    }
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": namespace_name(index), "labels": labels}})
}

pub fn quota_json(index: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ResourceQuota",
    "metadata": {"name": "storage", "namespace": namespace_name(index)},
    "spec": {"hard": {
        "requests.storage": QUOTA_TOTAL,
        format!("{CLASS_FAST}.storageclass.storage.k8s.io/requests.storage"): QUOTA_FAST,
        "persistentvolumeclaims": "1000",
    }}})
}

pub fn storage_classes() -> Vec<Value> {
    let class = |name: &str, expand: bool, default: bool| {
        let mut c = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                           "metadata": {"name": name}, "provisioner": PROVISIONER,
                           "allowVolumeExpansion": expand, "reclaimPolicy": "Delete",
                           "volumeBindingMode": "WaitForFirstConsumer"});
        if default {
            c["metadata"]["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        c
    };
    vec![
        class(CLASS_FAST, true, true),
        class(CLASS_STANDARD, true, false),
        class(CLASS_FIXED, false, false),
    ]
}

pub fn policies() -> Vec<Value> {
    vec![
        json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
               "metadata": {"name": POLICY_DENY},
               "spec": {"namespaceSelector": {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]},
                        "maxSize": POLICY_MAX_SIZE, "allowedModes": ["Online", "Offline"],
                        "enforcement": "Deny"}}),
        json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
               "metadata": {"name": POLICY_WARN},
               "spec": {"namespaceSelector": {"matchLabels": {"tier": "gold"}},
                        "maxIncrease": "400%", "enforcement": "Warn"}}),
    ]
}

/// Ops requests that exist already: a finished expansion for slots 0, 5, 10 and 15, and a
/// Pending one for slot 2. Returns (object, status phase).
pub fn existing_ops(db: &Database) -> Vec<(Value, &'static str)> {
    let phase = match db.slot {
        0 | 5 | 10 | 15 => "Successful",
        2 => "Pending",
        _ => return Vec::new(),
    };
    let kind = db.kind();
    let obj = json!({
        "apiVersion": "ops.kubedb.com/v1alpha1",
        "kind": kind.ops_kind(),
        "metadata": {"name": format!("{}-grow-old", db.name), "namespace": db.namespace},
        "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db.name},
                 "volumeExpansion": {"mode": "Online", kind.size_field(): VOLUME_SIZE},
                 "apply": "IfReady", "timeout": "10m", "maxRetries": 1},
    });
    vec![(obj, phase)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_holds_the_documented_pvc_count() {
        let dbs = databases(0..1);
        assert_eq!(dbs.len(), DBS_PER_NAMESPACE);
        let pvcs: usize = dbs.iter().map(|d| d.pvcs().len()).sum();
        assert_eq!(pvcs, PVCS_PER_NAMESPACE);
    }

    #[test]
    fn default_size_is_a_thousand_databases_and_six_thousand_pvcs() {
        let n = namespaces_for_databases(1000);
        let dbs = databases(0..n);
        assert_eq!(dbs.len(), 1000);
        assert_eq!(dbs.iter().map(|d| d.pvcs().len()).sum::<usize>(), 6000);
        assert_eq!(namespaces_for_pvcs(10_000) * PVCS_PER_NAMESPACE, 10_080);
    }

    #[test]
    fn pvcs_follow_kubedb_names_and_carry_the_selector() {
        let rc = Database::new(3, 0);
        let pvcs = rc.pvcs();
        assert_eq!(pvcs.len(), 12);
        assert_eq!(
            pvcs[0],
            ("data-rc-00-shard0-0".to_owned(), "rc-00-shard0-0".to_owned())
        );
        let zk = Database::new(3, 14);
        assert_eq!(zk.pvcs()[2].0, "zk-14-data-zk-14-2");
        let pvc = zk.pvc_json("zk-14-data-zk-14-2", "zk-14-2");
        for (k, v) in DatabaseKind::ZooKeeper.selector_labels("zk-14") {
            assert_eq!(pvc["metadata"]["labels"][&k], json!(v));
        }
        assert_eq!(pvc["metadata"]["namespace"], "bench-003");
        assert!(Database::new(0, 8).pvcs().is_empty());
        assert_eq!(Database::new(0, 8).to_json()["spec"]["storageType"], "Ephemeral");
    }
}
