//! Every manifest in examples/ parses into the shared types and back without losing a field.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::path::PathBuf;

use k8s_openapi::api::{core::v1::Namespace, storage::v1::StorageClass};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use volops_shared::api::{
    Redis, RedisAutoscaler, RedisOpsRequest, VolumeExpansionPolicy, ZooKeeper, ZooKeeperOpsRequest,
};

/// Every field of `original` is in `round` with the same value (defaults may be added).
fn assert_kept(original: &Value, round: &Value, path: &str) {
    match (original, round) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let other = b.get(k).unwrap_or_else(|| panic!("{path}.{k} was lost"));
                assert_kept(v, other, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path} changed length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_kept(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(original, round, "{path} changed"),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Value {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("parse {doc}: {e}"));
    serde_json::to_value(&typed).unwrap()
}

#[test]
fn every_example_round_trips() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let round = match kind.as_str() {
                "Redis" => round_trip::<Redis>(&doc),
                "ZooKeeper" => round_trip::<ZooKeeper>(&doc),
                "RedisOpsRequest" => round_trip::<RedisOpsRequest>(&doc),
                "ZooKeeperOpsRequest" => round_trip::<ZooKeeperOpsRequest>(&doc),
                "VolumeExpansionPolicy" => round_trip::<VolumeExpansionPolicy>(&doc),
                "RedisAutoscaler" => round_trip::<RedisAutoscaler>(&doc),
                "StorageClass" => round_trip::<StorageClass>(&doc),
                "Namespace" => round_trip::<Namespace>(&doc),
                other => panic!("{}: unexpected kind {other}", path.display()),
            };
            assert_kept(&doc, &round, &format!("{}:{kind}", path.display()));
            kinds.push(kind);
        }
    }
    for want in [
        "Redis",
        "ZooKeeper",
        "RedisOpsRequest",
        "ZooKeeperOpsRequest",
        "VolumeExpansionPolicy",
        "RedisAutoscaler",
        "StorageClass",
    ] {
        assert!(kinds.iter().any(|k| k == want), "examples/ has no {want}");
    }
}

#[test]
fn unknown_database_fields_survive_a_read_modify_write() {
    let doc = serde_json::json!({
        "apiVersion": "kubedb.com/v1", "kind": "Redis",
        "metadata": {"name": "rd", "namespace": "demo"},
        "spec": {"version": "8.2.2", "mode": "Cluster", "cluster": {"shards": 3, "replicas": 2, "announce": {"type": "hostname"}},
                 "podTemplate": {"spec": {"containers": [{"name": "redis", "resources": {"limits": {"memory": "1Gi"}}}]}},
                 "storage": {"storageClassName": "x", "resources": {"requests": {"storage": "1Gi"}}},
                 "authSecret": {"name": "s"}, "tls": {"issuerRef": {"name": "ca"}}},
        "status": {"phase": "Ready", "gateway": {"name": "g"},
                   "conditions": [{"type": "Paused", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "Paused"}]}
    });
    let mut rd: Redis = serde_json::from_value(doc.clone()).unwrap();
    rd.spec
        .storage
        .as_mut()
        .unwrap()
        .resources
        .as_mut()
        .unwrap()
        .requests
        .as_mut()
        .unwrap()
        .insert(
            "storage".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("2Gi".into()),
        );
    let back = serde_json::to_value(&rd).unwrap();
    let mut want = doc;
    want["spec"]["storage"]["resources"]["requests"]["storage"] = "2Gi".into();
    assert_eq!(back, want);
}

/// The examples that say "From KubeDB's docs" are those manifests, field for field (the demo
/// runs on KubeDB's own objects). Needs ../shared/kubedb: required when CI=true.
#[test]
fn examples_from_kubedbs_docs_are_its_manifests() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = root.join("../shared/kubedb/docs-examples");
    if !docs.is_dir() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} is required in CI",
            docs.display()
        );
        eprintln!("SKIPPED: {} is absent", docs.display());
        return;
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(source) = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# From KubeDB's docs: docs/examples/"))
        else {
            continue;
        };
        // KubeDB's copies are named by their path under docs/examples, `/` as `_`, without
        // the guide's folder (docs-examples/README.md).
        let (db, rest) = source.split_once('/').unwrap();
        let file = rest.rsplit('/').next().unwrap();
        let theirs = docs.join(format!("{db}_{file}"));
        let theirs = std::fs::read_to_string(&theirs).unwrap_or_else(|e| panic!("{}: {e}", theirs.display()));
        let ours: Value = serde_yaml::from_str(&text).unwrap();
        let theirs: Value = serde_yaml::from_str(&theirs).unwrap();
        assert_eq!(ours, theirs, "{} differs from KubeDB's {source}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 5, "the five examples taken from KubeDB's docs");
}
