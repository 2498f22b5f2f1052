//! Nodes as a cluster has them: registered by their kubelets, served like any resource, and
//! pods bound to them by the scheduler through `pods/binding`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "cluster_common.rs"]
mod cluster;
mod common;

use cluster::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use volops_sandbox_cluster::ClusterConfig;

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelets_register_ready_nodes() {
    let (_sb, client) = sandbox_with(ClusterConfig::fast().with_nodes(3)).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&Default::default()).await.unwrap();
    let names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
    assert_eq!(names, ["sandbox-node-0", "sandbox-node-1", "sandbox-node-2"]);
    let n1 = nodes.get("sandbox-node-1").await.unwrap();
    let status = n1.status.unwrap();
    let ready = status.conditions.unwrap_or_default();
    assert!(ready.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let addresses = status.addresses.unwrap_or_default();
    assert!(
        addresses
            .iter()
            .any(|a| a.type_ == "InternalIP" && a.address == "10.0.0.11")
    );
    let port = status
        .daemon_endpoints
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port);
    assert_eq!(port, Some(10250));
    assert_eq!(status.node_info.unwrap().kubelet_version, "v1.32.0");
    assert_eq!(
        n1.metadata.labels.unwrap()["kubernetes.io/hostname"],
        "sandbox-node-1"
    );

    // Watched like any resource.
    let mut seen = watcher(nodes, watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(WAIT, seen.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.name_any().starts_with("sandbox-node-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_spreads_pods_and_each_runs_on_its_nodes_address() {
    let (sb, client) = sandbox_with(ClusterConfig::fast().with_nodes(3)).await;
    namespace(&client, "sched").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "sched");
    for i in 0..6 {
        pods.create(&PostParams::default(), &pod(&format!("p{i}"), None))
            .await
            .unwrap();
    }
    let ips: BTreeMap<String, String> = sb
        .kubelets()
        .unwrap()
        .nodes()
        .iter()
        .map(|n| (n.name.clone(), n.internal_ip.clone()))
        .collect();
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        let p = wait_for(&pods, &format!("p{i}"), "pod Running", running).await;
        let node = p.spec.unwrap().node_name.unwrap();
        let st = p.status.unwrap();
        assert_eq!(st.host_ip.as_ref(), Some(&ips[&node]));
        let scheduled = st.conditions.unwrap_or_default();
        assert!(
            scheduled
                .iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "True")
        );
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(
        per_node.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{per_node:?}"
    );

    // A pod bound to a node no kubelet runs stays Pending, as on a real cluster.
    pods.create(&PostParams::default(), &pod("lost", Some("elsewhere")))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lost = pods.get("lost").await.unwrap();
    assert!(!running(&lost), "{:?}", lost.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_assign_a_pod_once() {
    let (_sb, client) = common::start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("b", None))
        .await
        .unwrap();
    let binding_of = |pod: &str, node: &str| {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
               "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
    };
    let binding = |node: &str| binding_of("b", node);
    let status: Value = pods
        .create_subresource("binding", "b", &PostParams::default(), &binding("n1"))
        .await
        .unwrap();
    assert_eq!(
        (status["status"].as_str(), status["code"].as_u64()),
        (Some("Success"), Some(201))
    );
    let bound = pods.get("b").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("n1"));
    assert_ne!(bound.metadata.resource_version, created.metadata.resource_version);

    let again = pods
        .create_subresource::<Value, Value>("binding", "b", &PostParams::default(), &binding("n2"))
        .await;
    let (code, _, message) = common::status(again);
    assert_eq!(code, 409);
    assert_eq!(
        message,
        "Operation cannot be fulfilled on pods/binding \"b\": pod b is already assigned to node \"n1\""
    );
    let missing = pods
        .create_subresource::<Value, Value>(
            "binding",
            "none",
            &PostParams::default(),
            &binding_of("none", "n1"),
        )
        .await;
    assert_eq!(common::status(missing).0, 404);
    let misnamed = pods
        .create_subresource::<Value, Value>("binding", "none", &PostParams::default(), &binding("n1"))
        .await;
    let (code, _, message) = common::status(misnamed);
    assert_eq!(code, 400);
    assert_eq!(
        message,
        "the name of the object (b) does not match the name on the URL (none)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_nodes_their_proxy_and_pod_bindings() {
    let (sb, _client) = common::start().await;
    let http = common::raw_client(&sb);
    let list: Value = http
        .get(format!("{}/api/v1", sb.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let find = |name: &str| {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in discovery"))
    };
    let nodes = find("nodes");
    assert_eq!(
        (nodes["kind"].as_str(), nodes["namespaced"].as_bool()),
        (Some("Node"), Some(false))
    );
    assert_eq!(nodes["shortNames"], json!(["no"]));
    let proxy = find("nodes/proxy");
    assert_eq!(proxy["kind"], "NodeProxyOptions");
    assert!(proxy.get("group").is_none());
    assert_eq!(find("pods/binding")["verbs"], json!(["create"]));
    find("nodes/status");
}
