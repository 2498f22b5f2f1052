//! The autoscaler types keep every field: KubeDB's docs manifest, and an object with the
//! sections volops does not type (compute, KubeDB's compute status), read and written back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::PathBuf;

use serde_json::{Value, json};
use volops_shared::DatabaseKind;
use volops_shared::api::{RedisAutoscaler, ZooKeeperAutoscaler, autoscaler_view};

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
    serde_json::to_value(serde_json::from_value::<T>(doc.clone()).unwrap()).unwrap()
}

#[test]
fn kubedbs_docs_autoscaler_round_trips_unchanged() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/kubedb/docs-examples/redis_autoscaling_storage_rd-as.yaml");
    if !path.is_file() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} is required in CI",
            path.display()
        );
        eprintln!("SKIPPED: {} is absent", path.display());
        return;
    }
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(round_trip::<RedisAutoscaler>(&doc), doc);
    let view = autoscaler_view(DatabaseKind::Redis, &doc).unwrap();
    assert_eq!(view.database, "rd-standalone");
    let standalone = view.section("standalone").unwrap();
    assert!(standalone.is_on());
    assert_eq!(
        (standalone.usage_threshold, standalone.scaling_threshold),
        (Some(60), Some(50))
    );
}

#[test]
fn sections_volops_does_not_type_survive_a_read_modify_write() {
    let doc = json!({
        "apiVersion": "autoscaling.kubedb.com/v1alpha1", "kind": "ZooKeeperAutoscaler",
        "metadata": {"name": "zk-as", "namespace": "demo"},
        "spec": {
            "databaseRef": {"name": "zk"},
            "opsRequestOptions": {"apply": "IfReady", "maxRetries": 1, "timeout": "5m", "future": true},
            "compute": {"zookeeper": {"trigger": "On", "podLifeTimeThreshold": "5m"}},
            "storage": {"zookeeper": {"trigger": "On", "usageThreshold": 60, "scalingThreshold": 50,
                                      "expansionMode": "Offline", "upperBound": 10_737_418_240_i64,
                                      "scalingRules": [{"appliesUpto": "100Gi", "threshold": "30pc", "note": "x"}],
                                      "newer": {"a": 1}}},
            "futureSection": [1, 2]
        },
        "status": {"phase": "Current", "observedGeneration": 2,
                   "vpas": [{"vpaName": "zk"}], "checkpoints": [],
                   "lastRequest": {"name": "zkops-zk-abc", "phase": "Successful", "consecutiveFailures": 0}}
    });
    let mut want = doc.clone();
    // An integer quantity is written back as its text, as the ops requests' sizes are.
    want["spec"]["storage"]["zookeeper"]["upperBound"] = json!("10737418240");
    assert_eq!(round_trip::<ZooKeeperAutoscaler>(&doc), want);
}
