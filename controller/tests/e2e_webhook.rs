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
use volops_sandbox::Sandbox;
use volops_shared::facts::RuleOptions;

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

/// The webhook (serving TLS) in the sandbox API server's path, as the chart registers it.
async fn start_webhook(
    sb: &Sandbox,
    client: &kube::Client,
    options: RuleOptions,
) -> (CancellationToken, volops_webhook::Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let dns = [format!("{SERVICE}.{RELEASE_NS}.svc"), "localhost".to_owned()];
    let bundle = volops_certs::generate(&dns, &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).unwrap();
    std::fs::write(dir.path().join("tls.crt"), &bundle.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &bundle.key_pem).unwrap();
    let mut config = volops_webhook::Config::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.probe_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.options = options;
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
    (token, webhook, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expansions_succeed_with_the_webhook_in_the_path() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    storage_class(&client, "slow", "offline", 20).await;
    let redis = database(&client, "db", "Cluster", "rd", "standard").await;
    let zk = database(&client, "db", "ZooKeeper", "zk", "slow").await;

    let (token, webhook, _dir) = start_webhook(&sb, &client, RuleOptions::default()).await;

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

/// Whether a PVC of the database is resizing (asked for more than it has).
async fn resizing(client: &kube::Client, db: &str) -> bool {
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    let selector = volops_shared::DatabaseKind::Redis.selector(db);
    pvcs.list(&kube::api::ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .iter()
        .any(|p| {
            let q = |v: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
                v.and_then(|q| volops_shared::Quantity::parse(&q.0).ok())
            };
            let spec = p
                .spec
                .as_ref()
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.as_ref());
            let status = p.status.as_ref().and_then(|s| s.capacity.as_ref());
            match (
                q(spec.and_then(|r| r.get("storage"))),
                q(status.and_then(|c| c.get("storage"))),
            ) {
                (Some(r), Some(c)) => r > c,
                _ => false,
            }
        })
}

/// Issue 20: a request for a database whose volumes an earlier volops request is resizing is
/// admitted (KubeDB queues it too), waits Pending with a condition naming the earlier one, and
/// both end Successful, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_behind_a_running_resize_is_queued_not_denied() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    // A slow driver: the first request's PVCs stay resizing while the second one is created.
    storage_class(&client, "slow", "online", 3000).await;
    let redis = database(&client, "db", "Standalone", "rd", "slow").await;
    let (token, webhook, _dir) = start_webhook(&sb, &client, RuleOptions::default()).await;
    let as_controller = controller_client(&sb).await;
    let (stop, task) = start_controller(as_controller, Arc::new(Metrics::default()));
    let rd_ops = ops_api(&client, "db", "RedisOpsRequest");
    rd_ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "first", "rd", "Online", "2Gi", json!({})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while !resizing(&client, "rd").await {
        assert!(Instant::now() < deadline, "the first request never resized a PVC");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = rd_ops
        .create(
            &PostParams::default(),
            &ops_request("RedisOpsRequest", "second", "rd", "Online", "3Gi", json!({})),
        )
        .await;
    // The resize was in flight before and after the create, so the webhook judged it then.
    let still = resizing(&client, "rd").await;
    assert!(
        second.is_ok(),
        "denied behind the first request's resize: {second:?}"
    );
    assert!(
        still,
        "the resize ended before the second request was judged: the test proves nothing"
    );
    let queued = wait_for(&rd_ops, "second", "second Queued", |r| has_condition(r, "Queued")).await;
    assert_eq!(at(&queued, "/status/phase"), Some("Pending"));
    assert!(
        condition_message(&queued, "Queued").starts_with("waiting for RedisOpsRequest db/first"),
        "{:#?}",
        queued.data["status"]
    );
    let first = wait_final(&rd_ops, "first").await;
    let second = wait_final(&rd_ops, "second").await;
    let _ = stop.send(());
    task.await.unwrap();
    for r in [&first, &second] {
        assert_eq!(
            at(r, "/status/phase"),
            Some("Successful"),
            "{:#?}",
            r.data["status"]
        );
    }
    let first_done = condition_time(&first, "Successful").unwrap();
    let second_started = condition_time(&second, "VolumeExpansion").unwrap();
    assert!(
        second_started >= first_done,
        "second started {second_started} before first ended {first_done}"
    );
    assert_eq!(
        condition(&second, "Queued").and_then(|c| c["status"].as_str()),
        Some("False")
    );
    let db = redis.get("rd").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("3Gi"));
    token.cancel();
    webhook.wait().await;
    sb.shutdown().await.unwrap();
}
