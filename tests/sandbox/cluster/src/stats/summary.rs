//! kubelet's Summary API body (`/stats/summary`, `k8s.io/kubelet/pkg/apis/stats/v1alpha1`),
//! with the JSON names of its Go types.

use super::fs::FsStats;
use crate::nodes::NodeInfo;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde_json::{Map, Value, json};

/// The Content-Type kubelet answers with.
pub const CONTENT_TYPE: &str = "application/json";

/// A measurement taken at `time` (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub time: String,
    pub stats: FsStats,
}

/// `FsStats` as JSON.
pub fn fs_json(sample: &Sample) -> Map<String, Value> {
    let s = &sample.stats;
    let v = json!({
        "time": sample.time,
        "availableBytes": s.available_bytes,
        "capacityBytes": s.capacity_bytes,
        "usedBytes": s.used_bytes,
        "inodesFree": s.inodes_free,
        "inodes": s.inodes,
        "inodesUsed": s.inodes_used,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// One `VolumeStats`: the pod's volume `name`, and `pvcRef` (namespace, claim) when the
/// volume is a PersistentVolumeClaim.
pub fn volume_json(name: &str, claim: Option<(&str, &str)>, sample: &Sample) -> Value {
    let mut m = fs_json(sample);
    m.insert("name".into(), json!(name));
    if let Some((namespace, claim)) = claim {
        m.insert("pvcRef".into(), json!({"name": claim, "namespace": namespace}));
    }
    Value::Object(m)
}

/// One `PodStats` with its volumes (`volume` is left out when empty, as `omitempty` does).
pub fn pod_json(pod: &Pod, volumes: Vec<Value>) -> Value {
    let status = pod.status.as_ref();
    let started = status
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter())
        .into_iter()
        .flatten()
        .map(|c| json!({"name": c.name, "startTime": started}))
        .collect();
    let mut m = Map::new();
    m.insert(
        "podRef".into(),
        json!({"name": pod.name_any(), "namespace": pod.namespace().unwrap_or_default(),
               "uid": pod.uid().unwrap_or_default()}),
    );
    m.insert("startTime".into(), json!(started));
    m.insert("containers".into(), Value::Array(containers));
    if !volumes.is_empty() {
        m.insert("volume".into(), Value::Array(volumes));
    }
    Value::Object(m)
}

/// The `Summary` of `node` with its pods' stats.
pub fn summary_json(node: &NodeInfo, node_fs: &Sample, pods: Vec<Value>) -> Value {
    json!({
        "node": {
            "nodeName": node.name,
            "startTime": node.started_at,
            "fs": fs_json(node_fs),
        },
        "pods": pods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fs::measure;

    #[test]
    fn volumes_carry_kubelets_field_names() {
        let sample = Sample {
            time: "2026-01-01T00:00:00Z".into(),
            stats: measure(1 << 30, 1 << 20),
        };
        let v = volume_json("data", Some(("demo", "data-rd-0")), &sample);
        for field in [
            "time",
            "availableBytes",
            "capacityBytes",
            "usedBytes",
            "inodesFree",
            "inodes",
            "inodesUsed",
            "name",
        ] {
            assert!(v.get(field).is_some(), "{field} missing from {v}");
        }
        assert_eq!(v["pvcRef"], json!({"name": "data-rd-0", "namespace": "demo"}));
        assert!(volume_json("tmp", None, &sample).get("pvcRef").is_none());
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "demo"}})).expect("pod");
        assert!(pod_json(&pod, vec![]).get("volume").is_none());
        assert_eq!(pod_json(&pod, vec![v])["volume"][0]["name"], "data");
    }
}
