//! The kubelets' Summary API through the API server's node proxy, as volops' usage source
//! reads it: shape and values, fills, disk full, growth after a resize, RBAC and errors, and
//! kubectl as the client.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "cluster_common.rs"]
mod cluster;
mod common;
mod kubelet;

use cluster::*;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kubelet::*;
use serde_json::{Value, json};
use volops_sandbox::Fill;
use volops_sandbox_cluster::ClusterConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_reports_each_running_pods_volumes_like_a_kubelet() {
    let (_sb, client) = sandbox_with(ClusterConfig::fast().with_nodes(2)).await;
    namespace(&client, "s").await;
    storage_class(&client, "standard", "online").await;
    claim(&client, "s", "data-a", "standard", "1Gi").await;
    claim(&client, "s", "data-b", "standard", "1Gi").await;
    let a = pod_with(&client, "s", "a", "data-a").await;
    let b = pod_with(&client, "s", "b", "data-b").await;
    assert_ne!(
        node_of(&a),
        node_of(&b),
        "the scheduler spreads pods over the nodes"
    );

    // The kubelets see pods through their informers, a moment after the test does.
    wait_volume(&client, &node_of(&a), "s", "data-a", |_| true).await;
    wait_volume(&client, &node_of(&b), "s", "data-b", |_| true).await;
    let s = summary(&client, &node_of(&a)).await;
    assert_eq!(s["node"]["nodeName"], node_of(&a));
    assert!(s["node"]["startTime"].as_str().is_some_and(|t| t.ends_with('Z')));
    let pods = s["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "only the node's own pods: {s:#}");
    let pod = &pods[0];
    assert_eq!(
        pod["podRef"],
        json!({"name": "a", "namespace": "s", "uid": a.uid().unwrap()})
    );
    assert_eq!(pod["containers"][0]["name"], "db");
    let volumes = pod["volume"].as_array().unwrap();
    assert_eq!(volumes.len(), 2, "the claim and the emptyDir: {volumes:?}");
    let tmp = volumes.iter().find(|v| v["name"] == "tmp").unwrap();
    assert!(tmp.get("pvcRef").is_none(), "only claims carry pvcRef");

    let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
    assert_eq!(data["pvcRef"], json!({"name": "data-a", "namespace": "s"}));
    assert_eq!(u(data, "capacityBytes"), GI);
    let used = u(data, "usedBytes");
    assert!(used > 0 && used < GI / 100, "a new volume holds little: {used}");
    assert_eq!(u(data, "availableBytes"), GI - used);
    assert_eq!(u(data, "inodes"), u(data, "inodesFree") + u(data, "inodesUsed"));
    assert!(u(data, "inodesUsed") > 0 && u(data, "inodes") >= GI / (64 << 10));
    let time: jiff::Timestamp = data["time"].as_str().unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now() - time).get_seconds().abs() < 60);

    let other = summary(&client, &node_of(&b)).await;
    assert!(claim_volume(&other, "s", "data-a").is_none());
    assert!(claim_volume(&other, "s", "data-b").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_show_up_grow_with_the_file_system_and_stop_at_a_full_disk() {
    let (sb, client) = sandbox().await;
    namespace(&client, "f").await;
    storage_class(&client, "standard", "online").await;
    claim(&client, "f", "data", "standard", "1Gi").await;
    let pod = pod_with(&client, "f", "p", "data").await;
    let node = node_of(&pod);

    let usage = sb.fill_volume("f", "data", Fill::Percent(60.0)).await.unwrap();
    let filled = (GI as f64 * 0.6).ceil() as u64;
    assert_eq!((usage.used_bytes, usage.capacity_bytes), (filled, GI));
    assert_eq!(usage.available_bytes, GI - filled);
    wait_volume(&client, &node, "f", "data", |v| u(v, "usedBytes") == filled).await;

    // The file system grows; the data stays.
    grow(&client, "f", "data", "2Gi").await;
    let v = wait_volume(&client, &node, "f", "data", |v| u(v, "capacityBytes") == 2 * GI).await;
    assert_eq!(u(&v, "usedBytes"), filled);
    assert_eq!(u(&v, "availableBytes"), 2 * GI - filled);
    assert_eq!(u(&v, "inodes"), 2 * (GI / (16 << 10)), "resize2fs adds inodes");

    // Writing past the capacity fills the disk and no more.
    let full = sb.fill_volume("f", "data", Fill::Bytes(5 * GI)).await.unwrap();
    assert_eq!((full.used_bytes, full.available_bytes), (2 * GI, 0));
    let v = wait_volume(&client, &node, "f", "data", |v| u(v, "availableBytes") == 0).await;
    assert_eq!(u(&v, "usedBytes"), u(&v, "capacityBytes"));

    let missing = sb.fill_volume("f", "nope", Fill::Percent(1.0)).await;
    assert!(
        matches!(
            missing,
            Err(volops_sandbox::SandboxError::Volume(
                volops_sandbox::VolumeError::ClaimNotFound { .. }
            ))
        ),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_processes_fill_through_the_admin_endpoint_and_the_cli() {
    let (sb, client) = sandbox().await;
    namespace(&client, "adm").await;
    storage_class(&client, "standard", "online").await;
    claim(&client, "adm", "data", "standard", "1Gi").await;
    let pod = pod_with(&client, "adm", "p", "data").await;
    let http = common::raw_client(&sb);
    let url = format!("{}/sandbox/v1/volumes/adm/data", sb.url());

    let put = http
        .put(&url)
        .json(&json!({"used": "512Mi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["usedBytes"], 512u64 << 20);
    assert_eq!(body["persistentVolumeClaim"], "data");
    assert!(body["volumeName"].as_str().is_some_and(|v| v.starts_with("pvc-")));
    let got: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(got, body);
    let bad = http
        .put(&url)
        .json(&json!({"usedPercent": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let missing = format!("{}/sandbox/v1/volumes/adm/none", sb.url());
    assert_eq!(http.get(&missing).send().await.unwrap().status(), 404);
    let anonymous = common::anonymous_client(&sb).build().unwrap();
    assert_eq!(anonymous.get(&url).send().await.unwrap().status(), 403);

    // The sandbox binary as a separate process.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_volops-sandbox"))
        .args(["fill-volume", "--kubeconfig"])
        .arg(sb.kubeconfig_path())
        .args(["-n", "adm", "data", "100%"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (answer["usedBytes"].as_u64(), answer["availableBytes"].as_u64()),
        (Some(GI), Some(0))
    );
    wait_volume(&client, &node_of(&pod), "adm", "data", |v| {
        u(v, "availableBytes") == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_proxy_fails_like_the_api_servers() {
    let (sb, client) = sandbox().await;
    let (code, reason, message) = common::status(raw_get(&client, &summary_path("nope")).await);
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "nodes \"nope\" not found")
    );

    // A Node no kubelet runs: nothing answers on its address.
    let ghost: Node = serde_json::from_value(json!({
        "metadata": {"name": "ghost"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.9.9.9"}]}
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &ghost)
        .await
        .unwrap();
    let (code, _, message) = common::status(raw_get(&client, &summary_path("ghost")).await);
    assert_eq!(
        (code, message.as_str()),
        (500, "dial tcp 10.9.9.9:10250: connect: connection refused")
    );

    // A node whose kubelet is down, then back.
    let kubelets = sb.kubelets().unwrap();
    let node = kubelets.nodes()[0].clone();
    kubelets.set_reachable(&node.name, false);
    let (code, _, message) = common::status(raw_get(&client, &summary_path(&node.name)).await);
    assert_eq!(code, 500);
    assert_eq!(
        message,
        format!("dial tcp {}:10250: connect: connection refused", node.internal_ip)
    );
    kubelets.set_reachable(&node.name, true);
    assert_eq!(
        summary(&client, &node.name).await["node"]["nodeName"],
        node.name.as_str()
    );

    // Paths the kubelet does not serve are its own 404; the port form of the name works.
    let http = common::raw_client(&sb);
    let other = http
        .get(format!("{}/api/v1/nodes/{}/proxy/nothing", sb.url(), node.name))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(other.text().await.unwrap(), "404 page not found\n");
    let healthz = raw_get(
        &client,
        &format!("/api/v1/nodes/{}:10250/proxy/healthz", node.name),
    )
    .await;
    assert_eq!(healthz.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_summary_needs_nodes_proxy() {
    use common::rbac;
    let (sb, admin) = sandbox().await;
    let node = sb.kubelets().unwrap().nodes()[0].name.clone();
    rbac::cluster_role(
        &admin,
        "node-reader",
        json!({}),
        json!([rbac::rule(&["get", "list", "watch"], &[""], &["nodes"])]),
    )
    .await;
    rbac::cluster_role_binding(
        &admin,
        "reader-nodes",
        "node-reader",
        json!([rbac::user("reader")]),
    )
    .await;
    let reader = sb.client_as("reader", &["system:authenticated"]).await.unwrap();
    let nodes = Api::<Node>::all(reader.clone())
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(nodes.items.len(), 1);
    let (code, reason, message) = common::status(raw_get(&reader, &summary_path(&node)).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        format!(
            "nodes \"{node}\" is forbidden: User \"reader\" cannot get resource \"nodes/proxy\" in API group \"\" at the cluster scope"
        )
    );

    rbac::cluster_role(
        &admin,
        "node-stats",
        json!({}),
        json!([rbac::rule(&["get"], &[""], &["nodes/proxy"])]),
    )
    .await;
    rbac::cluster_role_binding(
        &admin,
        "reader-stats",
        "node-stats",
        json!([rbac::user("reader")]),
    )
    .await;
    assert_eq!(summary(&reader, &node).await["node"]["nodeName"], node.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reads_nodes_and_the_summary() {
    let Some(kubectl) = common::kubectl() else { return };
    let (sb, client) = sandbox_with(ClusterConfig::fast().with_nodes(2)).await;
    namespace(&client, "k").await;
    storage_class(&client, "standard", "online").await;
    claim(&client, "k", "data", "standard", "1Gi").await;
    let pod = pod_with(&client, "k", "p", "data").await;
    sb.fill_volume("k", "data", Fill::Bytes(300 << 20)).await.unwrap();
    wait_volume(&client, &node_of(&pod), "k", "data", |v| {
        u(v, "usedBytes") == 300 << 20
    })
    .await;
    let run = |args: Vec<String>| {
        let kubectl = kubectl.clone();
        let kubeconfig = sb.kubeconfig_path().to_path_buf();
        async move {
            let out = tokio::process::Command::new(kubectl)
                .args(&args)
                .env("KUBECONFIG", kubeconfig)
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let table = run(vec!["get".into(), "nodes".into()]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    for node in ["sandbox-node-0", "sandbox-node-1"] {
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with(node))
            .unwrap_or_else(|| panic!("{node} missing:\n{table}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            (row[1], row[2], row[4]),
            ("Ready", "<none>", "v1.32.0"),
            "{table}"
        );
    }
    let wide = run(vec!["get".into(), "nodes".into(), "-o".into(), "wide".into()]).await;
    assert!(
        wide.contains("INTERNAL-IP") && wide.contains("10.0.0.10"),
        "{wide}"
    );

    let raw = run(vec!["get".into(), "--raw".into(), summary_path(&node_of(&pod))]).await;
    let s: Value = serde_json::from_str(&raw).unwrap();
    let v = claim_volume(&s, "k", "data").unwrap();
    assert_eq!(u(v, "usedBytes"), 300 << 20);

    // kubectl can drive the fill endpoint too (`replace --raw` is a PUT).
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), r#"{"usedPercent": 50}"#).unwrap();
    let path = body.path().display().to_string();
    let put = run(vec![
        "replace".into(),
        "--raw".into(),
        "/sandbox/v1/volumes/k/data".into(),
        "-f".into(),
        path,
    ])
    .await;
    let answer: Value = serde_json::from_str(&put).unwrap();
    assert_eq!(answer["usedBytes"], GI / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stats_period_serves_the_last_measurement_until_it_passes() {
    let config = ClusterConfig {
        volume_stats_period: std::time::Duration::from_secs(3),
        ..ClusterConfig::fast()
    };
    let (sb, client) = sandbox_with(config).await;
    namespace(&client, "p").await;
    storage_class(&client, "standard", "online").await;
    claim(&client, "p", "data", "standard", "1Gi").await;
    let pod = pod_with(&client, "p", "p", "data").await;
    let node = node_of(&pod);
    let first = wait_volume(&client, &node, "p", "data", |_| true).await;

    sb.fill_volume("p", "data", Fill::Percent(50.0)).await.unwrap();
    let cached = claim_volume(&summary(&client, &node).await, "p", "data")
        .cloned()
        .unwrap();
    assert_eq!(cached, first, "measured once per period, like kubelet");
    let fresh = wait_volume(&client, &node, "p", "data", |v| u(v, "usedBytes") == GI / 2).await;
    assert_ne!(fresh["time"], first["time"], "a new measurement has a new time");
}
