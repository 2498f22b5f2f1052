//! Node registration: each simulated kubelet creates its `v1 Node` with the status a kubelet
//! reports (Ready, addresses, kubelet endpoint, node info), as `kubelet --register-node` does.

use crate::error::{Context, Error, ignore_codes};
use crate::util::now_string;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The port every kubelet serves on (`status.daemonEndpoints.kubeletEndpoint.Port`).
pub const KUBELET_PORT: u16 = 10250;
/// The version the simulated kubelets report.
pub const KUBELET_VERSION: &str = "v1.32.0";
/// The root file system of every node (what emptyDir and similar volumes report).
pub const NODE_FS_BYTES: u64 = 100 << 30;

/// One registered node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `metadata.name`.
    pub name: String,
    /// The InternalIP address (pods on the node get it as `status.hostIP`).
    pub internal_ip: String,
    /// When its kubelet started (RFC 3339).
    pub started_at: String,
}

/// The nodes of `names`, numbered in order (`10.0.0.10`, `10.0.0.11`, ...).
pub fn plan(names: &[String]) -> Vec<NodeInfo> {
    let at = now_string();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| NodeInfo {
            name: name.clone(),
            internal_ip: format!("10.0.{}.{}", i / 240, 10 + i % 240),
            started_at: at.clone(),
        })
        .collect()
}

/// The Node object a kubelet registers (without status).
fn object(node: &NodeInfo, index: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
            },
            "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"podCIDR": format!("10.244.{index}.0/24"), "podCIDRs": [format!("10.244.{index}.0/24")]},
    })
}

/// The status a healthy kubelet posts.
pub fn status(node: &NodeInfo) -> Value {
    let at = now_string();
    let cond = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": at, "lastTransitionTime": node.started_at})
    };
    let resources = json!({
        "cpu": "8", "memory": "32863744Ki", "pods": "110",
        "ephemeral-storage": format!("{}Ki", NODE_FS_BYTES >> 10), "hugepages-2Mi": "0",
    });
    json!({
        "capacity": resources, "allocatable": resources,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": node.internal_ip},
            {"type": "Hostname", "address": node.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": format!("sandbox-{}", node.name), "systemUUID": format!("sandbox-{}", node.name),
            "bootID": format!("sandbox-{}", node.name), "kernelVersion": "6.1.0-sandbox-amd64",
            "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://1.7.24",
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux", "architecture": "amd64",
        },
    })
}

/// Registers every node (an existing Node, e.g. from a state file, is taken over) and posts
/// its status.
pub async fn register(client: &kube::Client, nodes: &[NodeInfo]) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client.clone());
    for (i, node) in nodes.iter().enumerate() {
        let obj: Node = serde_json::from_value(object(node, i)).map_err(|e| Error::Malformed {
            what: format!("node {}", node.name),
            reason: e.to_string(),
        })?;
        ignore_codes(api.create(&PostParams::default(), &obj).await, &[409])
            .ctx(|| format!("registering node {}", node.name))?;
        api.patch_status(
            &node.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status(node)})),
        )
        .await
        .ctx(|| format!("posting status of node {}", node.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_distinct_addresses_and_a_kubelet_status() {
        let names: Vec<String> = (0..3).map(|i| format!("n{i}")).collect();
        let nodes = plan(&names);
        assert_eq!(nodes[0].internal_ip, "10.0.0.10");
        assert_eq!(nodes[2].internal_ip, "10.0.0.12");
        let st = status(&nodes[1]);
        assert_eq!(st["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        assert_eq!(st["addresses"][0]["address"], "10.0.0.11");
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}, "status": st}))
            .expect("a kubelet's status reads as a Node");
        let ready = node.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(ready.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    }
}
