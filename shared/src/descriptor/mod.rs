//! Per-database descriptors: where a database's volumes live (docs/ARCHITECTURE.md, "Adding a database kind"). Adding a
//! database kind is adding a descriptor here.

use std::collections::BTreeMap;

use kube::core::{ApiResource, GroupVersionKind};

use crate::api::{Redis, ZooKeeper};

/// The keys of KubeDB's selector labels on a database's offshoots
/// ([`DatabaseKind::selector_labels`]): the only labels the rules read from a PVC.
pub const SELECTOR_LABEL_KEYS: [&str; 3] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
];

/// The database kinds volops can expand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatabaseKind {
    Redis,
    ZooKeeper,
}

/// The workload kinds that own a database's pods and claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum WorkloadKind {
    /// `apps/v1 StatefulSet`.
    StatefulSet,
    /// KubeDB's `apps.k8s.appscode.com/v1 PetSet`.
    PetSet,
}

impl WorkloadKind {
    pub fn api_version(self) -> &'static str {
        match self {
            Self::StatefulSet => "apps/v1",
            Self::PetSet => "apps.k8s.appscode.com/v1",
        }
    }
    pub fn group(self) -> &'static str {
        match self {
            Self::StatefulSet => "apps",
            Self::PetSet => "apps.k8s.appscode.com",
        }
    }
    pub fn kind(self) -> &'static str {
        match self {
            Self::StatefulSet => "StatefulSet",
            Self::PetSet => "PetSet",
        }
    }
    pub fn plural(self) -> &'static str {
        match self {
            Self::StatefulSet => "statefulsets",
            Self::PetSet => "petsets",
        }
    }
    /// The other kind, for clusters where a database runs on the one its descriptor does not
    /// name (older KubeDB releases used StatefulSets, newer ones PetSets).
    pub fn other(self) -> Self {
        match self {
            Self::StatefulSet => Self::PetSet,
            Self::PetSet => Self::StatefulSet,
        }
    }
    /// KubeDB's condition name for orphan-deleting workloads of this kind.
    pub fn orphan_condition(self) -> &'static str {
        match self {
            Self::StatefulSet => "OrphanStatefulSetPods",
            Self::PetSet => "OrphanPetSetPods",
        }
    }
    /// KubeDB's condition name for recreating workloads of this kind.
    pub fn update_condition(self) -> &'static str {
        match self {
            Self::StatefulSet => "UpdateStatefulSets",
            Self::PetSet => "UpdatePetSets",
        }
    }
    /// KubeDB's condition name for the recreated workloads found again.
    pub fn ready_condition(self) -> &'static str {
        match self {
            Self::StatefulSet => "ReadyStatefulSets",
            Self::PetSet => "ReadyPetSets",
        }
    }
    /// KubeDB's spelling of the kind in its orphan-delete message ("petSets", "statefulSets").
    pub fn message_plural(self) -> &'static str {
        match self {
            Self::StatefulSet => "statefulSets",
            Self::PetSet => "petSets",
        }
    }
}

impl DatabaseKind {
    pub const ALL: [Self; 2] = [Self::Redis, Self::ZooKeeper];

    pub fn kind(self) -> &'static str {
        match self {
            Self::Redis => "Redis",
            Self::ZooKeeper => "ZooKeeper",
        }
    }
    pub fn group(self) -> &'static str {
        "kubedb.com"
    }
    pub fn version(self) -> &'static str {
        match self {
            Self::Redis => "v1",
            Self::ZooKeeper => "v1alpha2",
        }
    }
    pub fn plural(self) -> &'static str {
        match self {
            Self::Redis => "redises",
            Self::ZooKeeper => "zookeepers",
        }
    }
    pub fn ops_kind(self) -> &'static str {
        match self {
            Self::Redis => "RedisOpsRequest",
            Self::ZooKeeper => "ZooKeeperOpsRequest",
        }
    }
    pub fn ops_plural(self) -> &'static str {
        match self {
            Self::Redis => "redisopsrequests",
            Self::ZooKeeper => "zookeeperopsrequests",
        }
    }
    /// The field under `spec.volumeExpansion` that carries the new size.
    pub fn size_field(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::ZooKeeper => "node",
        }
    }
    /// KubeDB's summary condition of the PVC step and its message: ZooKeeper's guide shows
    /// `UpdateNodePVCs` (named after its `node` field); a kind with one node type uses
    /// `VolumeExpansionSucceeded` (the Redis name is not documented, docs/KUBEDB.md).
    pub fn pvc_condition(self) -> (&'static str, &'static str) {
        match self {
            Self::Redis => ("VolumeExpansionSucceeded", "successfully updated PVC sizes"),
            Self::ZooKeeper => ("UpdateNodePVCs", "successfully updated node PVC sizes"),
        }
    }
    /// The `spec.type` values KubeDB defines for this kind's ops requests.
    pub fn ops_types(self) -> &'static [&'static str] {
        match self {
            Self::Redis => crate::api::ops::REDIS_OPS_TYPES,
            Self::ZooKeeper => crate::api::ops::ZOOKEEPER_OPS_TYPES,
        }
    }
    /// The workload kind current KubeDB runs this database on: PetSets for every kind and
    /// Redis mode (docs/KUBEDB.md). Older releases ran Redis on StatefulSets, which volops
    /// finds as well (see [`WorkloadKind::other`]).
    pub fn workload_kind(self) -> WorkloadKind {
        match self {
            Self::Redis | Self::ZooKeeper => WorkloadKind::PetSet,
        }
    }
    /// Whether the database kind has `spec.storageType` (ZooKeeper does not).
    pub fn has_storage_type(self) -> bool {
        matches!(self, Self::Redis)
    }
    /// Finds the kind of a database by its API kind name.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.kind() == kind)
    }
    /// Finds the kind whose ops requests have this API kind name.
    pub fn from_ops_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.ops_kind() == kind)
    }
    /// The labels that select every offshoot (workloads, pods, PVCs) of a database.
    pub fn selector_labels(self, db: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "app.kubernetes.io/name".to_owned(),
                format!("{}.{}", self.plural(), self.group()),
            ),
            ("app.kubernetes.io/instance".to_owned(), db.to_owned()),
            ("app.kubernetes.io/managed-by".to_owned(), "kubedb.com".to_owned()),
        ])
    }
    /// Whether `labels` carry every label of [`DatabaseKind::selector_labels`] for `db`, checked
    /// without building that map (the webhook asks once per PVC of a namespace).
    pub fn selects(self, db: &str, labels: &BTreeMap<String, String>) -> bool {
        let is = |k: &str, v: &str| labels.get(k).is_some_and(|x| x == v);
        let name_ok = labels.get("app.kubernetes.io/name").is_some_and(|x| {
            x.strip_prefix(self.plural())
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(self.group())
        });
        is("app.kubernetes.io/instance", db) && is("app.kubernetes.io/managed-by", "kubedb.com") && name_ok
    }
    /// The selector of every offshoot of every database of this kind (for watches): the
    /// kind's selector labels with the instance label present, whatever its value.
    pub fn offshoot_selector(self) -> String {
        format!(
            "app.kubernetes.io/name={}.{},app.kubernetes.io/managed-by=kubedb.com,app.kubernetes.io/instance",
            self.plural(),
            self.group()
        )
    }
    /// The same selector as a label-selector string for list calls.
    pub fn selector(self, db: &str) -> String {
        self.selector_labels(db)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The shape of a database that decides its workloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Redis Standalone or Sentinel mode: one workload `<db>`.
    RedisSingle { replicas: i32 },
    /// Redis Cluster mode: workloads `<db>-shard<i>`; `replicas` counts the primary.
    RedisCluster { shards: i32, replicas: i32 },
    /// ZooKeeper ensemble: one workload `<db>`.
    ZooKeeper { replicas: i32 },
}

impl Topology {
    /// The topology of a Redis, with KubeDB's defaults (Standalone, 1 replica, 3 shards x 2).
    pub fn of_redis(db: &Redis) -> Self {
        let spec = &db.spec;
        if spec.mode.as_deref() == Some("Cluster") {
            let cluster = spec.cluster.clone().unwrap_or_default();
            Self::RedisCluster {
                shards: cluster.shards.unwrap_or(3),
                replicas: cluster.replicas.unwrap_or(2),
            }
        } else {
            Self::RedisSingle {
                replicas: spec.replicas.unwrap_or(1),
            }
        }
    }

    /// The topology of a ZooKeeper (1 replica by default).
    pub fn of_zookeeper(db: &ZooKeeper) -> Self {
        Self::ZooKeeper {
            replicas: db.spec.replicas.unwrap_or(1),
        }
    }
}

/// One workload of a database and the claims its pods own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub kind: WorkloadKind,
    /// Name of the volume claim template that holds the data.
    pub claim_template: String,
    pub replicas: i32,
}

impl Workload {
    /// Pod names, in order.
    pub fn pods(&self) -> Vec<String> {
        (0..self.replicas.max(0))
            .map(|i| format!("{}-{i}", self.name))
            .collect()
    }
    /// The PVC of one pod: `<claimTemplate>-<pod>`.
    pub fn pvc_of(&self, pod: &str) -> String {
        format!("{}-{pod}", self.claim_template)
    }
    /// PVC names, in pod order.
    pub fn pvcs(&self) -> Vec<String> {
        self.pods().iter().map(|p| self.pvc_of(p)).collect()
    }
}

/// Most workloads one database may have: Redis Cluster is documented to scale to 1,000 nodes
/// (redis.io, "Redis cluster specification"), so a cluster never needs more shards than that.
pub const MAX_WORKLOADS: i64 = 1_000;
/// Most pods (and claims of one template) one database may have, all workloads together: the
/// same 1,000 nodes. A topology past either limit is refused before anything is allocated
/// for it (a tenant writes these counts; see controller/DESIGN-NOTES.md, "Isolation").
pub const MAX_PODS: i64 = 1_000;

/// Why a database's topology is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("{field} is {value}; it must not be negative")]
    Negative { field: &'static str, value: i64 },
    #[error("{field} is {value}; volops handles at most {max} (the Redis Cluster limit of 1,000 nodes)")]
    TooLarge {
        field: &'static str,
        value: i64,
        max: i64,
    },
}

impl Topology {
    /// Checks the counts against [`MAX_WORKLOADS`] and [`MAX_PODS`] (pure, allocates nothing).
    pub fn check(&self) -> Result<(), TopologyError> {
        let (workloads, replicas, workloads_field, replicas_field) = match *self {
            Self::RedisCluster { shards, replicas } => (
                i64::from(shards),
                i64::from(replicas),
                "spec.cluster.shards",
                "spec.cluster.replicas",
            ),
            Self::RedisSingle { replicas } | Self::ZooKeeper { replicas } => {
                (1, i64::from(replicas), "workloads", "spec.replicas")
            }
        };
        for (field, value) in [(workloads_field, workloads), (replicas_field, replicas)] {
            if value < 0 {
                return Err(TopologyError::Negative { field, value });
            }
        }
        if workloads > MAX_WORKLOADS {
            return Err(TopologyError::TooLarge {
                field: workloads_field,
                value: workloads,
                max: MAX_WORKLOADS,
            });
        }
        // Both are at most i32::MAX: the product fits in an i64.
        let pods = workloads * replicas;
        if pods > MAX_PODS {
            let field = if workloads > 1 {
                "pods (shards x replicas)"
            } else {
                replicas_field
            };
            return Err(TopologyError::TooLarge {
                field,
                value: pods,
                max: MAX_PODS,
            });
        }
        Ok(())
    }
}

/// The workloads of a database, as KubeDB names them; a topology past the limits is refused
/// (see [`Topology::check`]).
pub fn workloads(kind: DatabaseKind, db: &str, topology: &Topology) -> Result<Vec<Workload>, TopologyError> {
    topology.check()?;
    let make = |name: String, claim_template: String, replicas: i32| Workload {
        name,
        kind: kind.workload_kind(),
        claim_template,
        replicas,
    };
    Ok(match (kind, topology) {
        (_, Topology::RedisCluster { shards, replicas }) => (0..*shards)
            .map(|i| make(format!("{db}-shard{i}"), "data".to_owned(), *replicas))
            .collect(),
        (_, Topology::RedisSingle { replicas }) => vec![make(db.to_owned(), "data".to_owned(), *replicas)],
        (_, Topology::ZooKeeper { replicas }) => vec![make(db.to_owned(), format!("{db}-data"), *replicas)],
    })
}

/// The ops requests' API group and version (both kinds).
const OPS_GROUP: &str = "ops.kubedb.com";
const OPS_VERSION: &str = "v1alpha1";

impl DatabaseKind {
    /// The API resource of the database kind (served as dynamic objects: rules read JSON).
    pub fn database_resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group(), self.version(), self.kind());
        ApiResource::from_gvk_with_plural(&gvk, self.plural())
    }

    /// The API resource of the kind's ops requests.
    pub fn ops_resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(OPS_GROUP, OPS_VERSION, self.ops_kind());
        ApiResource::from_gvk_with_plural(&gvk, self.ops_plural())
    }
}

impl WorkloadKind {
    /// The API resource of the workload kind (`v1` for both).
    pub fn resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group(), "v1", self.kind());
        ApiResource::from_gvk_with_plural(&gvk, self.plural())
    }
}

#[cfg(test)]
mod tests;
