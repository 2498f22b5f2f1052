//! The databases a chaos run expands: Redis standalone Online/Offline, a Redis standalone on a
//! class whose driver fails every resize, a Redis cluster, ZooKeeper Online/Offline. A run
//! may use several copies of the set (`-2`, `-3`, ... suffixes).

use serde_json::{Value, json};
use volops_shared::DatabaseKind;

pub const NS: &str = "demo";

/// One database under test.
#[derive(Clone, Debug)]
pub struct Db {
    pub name: String,
    pub kind: DatabaseKind,
    pub mode: &'static str,
    pub pods: usize,
    pub workloads: usize,
    pub manifest: Value,
    /// At most this many rounds (a failed resize leaves the claim asking for more, which
    /// later requests are rightly denied for).
    pub max_rounds: usize,
    /// The phase every request must end in, when it is known up front.
    pub expect: Option<&'static str>,
}

impl Db {
    pub fn selector(&self) -> String {
        format!("app.kubernetes.io/instance={}", self.name)
    }

    /// Pods that may be missing at once: none Online, one Offline.
    pub fn allowed_missing(&self) -> usize {
        usize::from(self.mode == "Offline")
    }
}

fn storage(class: &str) -> Value {
    json!({"storageClassName": class, "accessModes": ["ReadWriteOnce"],
           "resources": {"requests": {"storage": "1Gi"}}})
}

fn redis(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "kubedb.com/v1", "kind": "Redis",
           "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn zookeeper(name: &str, class: &str) -> Value {
    json!({"apiVersion": "kubedb.com/v1alpha2", "kind": "ZooKeeper",
           "metadata": {"name": name, "namespace": NS},
           "spec": {"version": "3.9.1", "replicas": 3, "storage": storage(class),
                    "deletionPolicy": "WipeOut"}})
}

fn standalone(class: &str) -> Value {
    json!({"version": "8.2.2", "storageType": "Durable", "storage": storage(class),
           "deletionPolicy": "WipeOut"})
}

/// The StorageClass whose simulated driver fails every resize (the Failed path).
pub const FAILING_CLASS: &str = "{apiVersion: storage.k8s.io/v1, kind: StorageClass, \
    metadata: {name: failing}, provisioner: sandbox.volops.dev/csi, allowVolumeExpansion: true, \
    parameters: {sandbox.volops.dev/resize-mode: fail}}";

/// `copies` copies of the six-database set; the first copy keeps the plain names.
pub fn databases(copies: usize) -> Vec<Db> {
    (1..=copies.max(1)).flat_map(set).collect()
}

fn set(copy: usize) -> Vec<Db> {
    let name = |base: &str| {
        if copy == 1 {
            base.to_owned()
        } else {
            format!("{base}-{copy}")
        }
    };
    let db = |base: &str, kind, mode, pods, workloads, manifest: fn(&str) -> Value| {
        let n = name(base);
        Db {
            manifest: manifest(&n),
            name: n,
            kind,
            mode,
            pods,
            workloads,
            max_rounds: usize::MAX,
            expect: None,
        }
    };
    let mut failing = db("rd-failing", DatabaseKind::Redis, "Online", 1, 1, |n| {
        redis(n, standalone("failing"))
    });
    failing.max_rounds = 1;
    failing.expect = Some("Failed");
    vec![
        db("rd-online", DatabaseKind::Redis, "Online", 1, 1, |n| {
            redis(n, standalone("topolvm-provisioner"))
        }),
        db("rd-offline", DatabaseKind::Redis, "Offline", 1, 1, |n| {
            redis(n, standalone("standard"))
        }),
        failing,
        db("rd-cluster", DatabaseKind::Redis, "Online", 4, 2, |n| {
            redis(
                n,
                json!({"version": "8.2.2", "mode": "Cluster", "cluster": {"shards": 2, "replicas": 2},
                       "storageType": "Durable", "storage": storage("topolvm-provisioner"),
                       "deletionPolicy": "WipeOut"}),
            )
        }),
        db("zk-offline", DatabaseKind::ZooKeeper, "Offline", 3, 1, |n| {
            zookeeper(n, "standard")
        }),
        db("zk-online", DatabaseKind::ZooKeeper, "Online", 3, 1, |n| {
            zookeeper(n, "topolvm-provisioner")
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_have_distinct_names_and_matching_manifests() {
        let dbs = databases(3);
        assert_eq!(dbs.len(), 18);
        let names: std::collections::BTreeSet<&str> = dbs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names.len(), 18);
        for d in &dbs {
            assert_eq!(d.manifest["metadata"]["name"], d.name.as_str());
        }
        assert!(names.contains("rd-online") && names.contains("zk-offline-3"));
        assert_eq!(databases(0).len(), 6);
    }
}
