//! End to end with the admission webhook in the API server's path (chart-shaped webhook
//! configurations): the controller's writes (annotations, finalizers, /status, database spec)
//! pass it, and expansions of Redis Cluster (Online) and ZooKeeper (Offline) succeed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::{Api, api::PostParams};
use serde_json::{Value, json};
use support::*;
use tokio_util::sync::CancellationToken;
use volops_controller::Metrics;

const RELEASE_NS: &str = "volops-system";
const SERVICE: &str = "volops-webhook";
/// The controller acts as its ServiceAccount, which the webhook knows (`--controller-username`).
const CONTROLLER: &str = "system:serviceaccount:volops-system:volops-controller";

fn webhook_configs(ca_pem: &str) -> (Value, Value) {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let hook = |name: &str, path: &str, rules: Value| {
        json!({"name": name, "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
               "matchPolicy": "Equivalent", "timeoutSeconds": 10,
               "clientConfig": {"service": {"name": SERVICE, "namespace": RELEASE_NS, "path": path, "port": 443},
                                "caBundle": ca},
               "rules": rules})
    };
    let ops = |ops: Value| {
        json!([{"apiGroups": ["ops.kubedb.com"], "apiVersions": ["v1alpha1"], "operations": ops, "scope": "Namespaced",
                "resources": ["redisopsrequests", "redisopsrequests/status",
                              "zookeeperopsrequests", "zookeeperopsrequests/status"]}])
    };
    let dbs = json!([{"apiGroups": ["kubedb.com"], "apiVersions": ["v1", "v1alpha2"], "resources": ["redises", "zookeepers"],
                      "operations": ["UPDATE"], "scope": "Namespaced"}]);
    (
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": "volops"}, "webhooks": [hook("opsrequests.mutate.volops.dev", "/mutate", ops(json!(["CREATE"])))]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "volops"}, "webhooks": [
                   hook("opsrequests.validate.volops.dev", "/validate", ops(json!(["CREATE", "UPDATE"]))),
                   hook("databases.validate.volops.dev", "/validate", dbs)]}),
    )
}

/// Polls the webhook's readiness probe until it answers 200 (deadline: WAIT).
async fn wait_ready(probe: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut tcp) = tokio::net::TcpStream::connect(probe).await {
            let _ = tcp
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                .await;
            let mut buf = String::new();
            let _ = tcp.read_to_string(&mut buf).await;
            if buf.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "webhook not ready in time");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expansions_succeed_with_the_webhook_in_the_path() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    storage_class(&client, "slow", "offline", 20).await;
    let redis = database(&client, "db", "Cluster", "rd", "standard").await;
    let zk = database(&client, "db", "ZooKeeper", "zk", "slow").await;

    let dir = tempfile::tempdir().unwrap();
    let dns = [format!("{SERVICE}.{RELEASE_NS}.svc"), "localhost".to_owned()];
    let bundle = volops_certs::generate(&dns, &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &bundle.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &bundle.key_pem).unwrap();
    let mut config = volops_webhook::Config::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.probe_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.options.controller_username = Some(CONTROLLER.into());
    let token = CancellationToken::new();
    let webhook = volops_webhook::start(config, client.clone(), token.clone())
        .await
        .unwrap();
    let https = webhook.https_addr;
    sb.set_service_resolver(Arc::new(move |ns: &str, name: &str, _| {
        (ns == RELEASE_NS && name == SERVICE).then_some(https)
    }));
    wait_ready(webhook.probe_addr).await;
    let (m, v) = webhook_configs(&bundle.ca_cert_pem);
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    mutating
        .create(&PostParams::default(), &serde_json::from_value(m).unwrap())
        .await
        .unwrap();
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    validating
        .create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();

    let rd_ops = ops_api(&client, "db", "RedisOpsRequest");
    // The webhook is in the path: a shrink is refused at creation.
    let shrink = rd_ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "shrink", "rd", "Online", "512Mi", json!({})),
        )
        .await;
    assert!(
        matches!(shrink, Err(kube::Error::Api(ref s)) if s.code >= 400),
        "{shrink:?}"
    );

    let as_controller = controller_client(&sb).await;
    let (stop, task) = start_controller(as_controller, Arc::new(Metrics::default()));
    rd_ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "grow", "rd", "Online", "2Gi", json!({})),
        )
        .await
        .unwrap();
    let zk_ops = ops_api(&client, "db", "ZooKeeperOpsRequest");
    zk_ops
        .create(
            &PostParams::default(),
            &ops_request("ZooKeeperOpsRequest", "grow", "zk", "Offline", "2Gi", json!({})),
        )
        .await
        .unwrap();
    let rd_done = wait_final(&rd_ops, "grow").await;
    let zk_done = wait_final(&zk_ops, "grow").await;
    let _ = stop.send(());
    task.await.unwrap();
    assert_eq!(
        at(&rd_done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        rd_done.data["status"]
    );
    assert_eq!(
        at(&zk_done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        zk_done.data["status"]
    );
    for db in [redis.get("rd").await.unwrap(), zk.get("zk").await.unwrap()] {
        assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
        assert!(paused_conditions(&db).is_empty());
    }
    token.cancel();
    webhook.wait().await;
    sb.shutdown().await.unwrap();
}
