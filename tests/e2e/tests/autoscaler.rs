//! Issue 22, the storage autoscaler end to end: the webhook over HTTPS in the API server's
//! path (it defaults and validates the autoscalers), the controller reading the kubelets'
//! Summary API through the node proxy every second, the sandbox's databases filled through
//! the cluster's own control. A Redis Cluster and a ZooKeeper ensemble fill past the threshold:
//! one request each, Successful, usage below the threshold, nothing more until it rises again.
//! Also KubeDB's docs' autoscaler manifests applied unchanged, and Prometheus as the source.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod autoscaler_common;

use autoscaler_common::*;
use volops_controller::autoscaler::{AutoscalerConfig, UsageSourceConfig};
use volops_e2e::repo_root;
use volops_e2e::wait::at;
use volops_sandbox::ClusterConfig;
use volops_shared::DatabaseKind::{Redis, ZooKeeper};

const ON: &str = "      trigger: \"On\"\n      usageThreshold: 80\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_and_a_zookeeper_grow_once_each_then_nothing_more_happens() {
    let h = harness(ClusterConfig::fast(), every_second(), true).await;
    examples(&h, &["redis-cluster.yaml", "zookeeper.yaml"]).await;
    ready(&h, Redis, "sample-redis").await;
    ready(&h, ZooKeeper, "zk-quickstart").await;
    autoscaler(
        &h,
        Redis,
        "rd-as",
        "sample-redis",
        "cluster",
        &format!("{ON}      expansionMode: Online\n"),
    )
    .await;
    autoscaler(
        &h,
        ZooKeeper,
        "zk-as",
        "zk-quickstart",
        "zookeeper",
        &format!("{ON}      expansionMode: Offline\n"),
    )
    .await;
    // The webhook filled KubeDB's defaults.
    let stored = autoscalers(&h, Redis).get("rd-as").await.unwrap();
    assert_eq!(
        at(&stored, "/spec/opsRequestOptions/apply"),
        Some("IfReady"),
        "{:#}",
        stored.data
    );
    assert_eq!(stored.data["spec"]["storage"]["cluster"]["scalingThreshold"], 50);

    // Nearly empty volumes: nothing to do.
    decision(&h, Redis, "rd-as", "BelowThreshold").await;
    decision(&h, ZooKeeper, "zk-as", "BelowThreshold").await;
    no_more_than(&h, Redis, "rd-as", 0, 2).await;

    fill(&h, "sample-redis", 85.0).await;
    fill(&h, "zk-quickstart", 85.0).await;
    for (kind, name, db, prefix) in [
        (Redis, "rd-as", "sample-redis", "rdops-sample-redis-"),
        (ZooKeeper, "zk-as", "zk-quickstart", "zkops-zk-quickstart-"),
    ] {
        let done = requests_done(&h, kind, name, 1).await;
        let r = &done[0];
        let rname = r.metadata.name.clone().unwrap();
        assert!(
            rname.starts_with(prefix) && rname.len() == prefix.len() + 6,
            "{rname}"
        );
        assert_eq!(
            at(r, "/status/phase"),
            Some("Successful"),
            "{:#}",
            r.data["status"]
        );
        // 1Gi grown by scalingThreshold 50 is 1.5Gi, rounded up to a whole GiB.
        assert_eq!(size(r, kind), "2Gi");
        assert_eq!(at(r, "/spec/apply"), Some("IfReady"));
        let owner = &r.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            (autoscaler_kind(kind), Some(true))
        );
        for pvc in pvcs(&h, db).await {
            assert_eq!(capacity(&pvc), "2Gi", "{:?}", pvc.metadata.name);
        }
        // 85% of 1Gi is 42% of 2Gi: below the threshold, and it stays so.
        let message = decision(&h, kind, name, "BelowThreshold").await;
        assert!(message.contains("42% full"), "{message}");
        assert_eq!(phase(&h, kind, name).await, "Current");
        let last = condition(&h, kind, name, "LastRequest").await.unwrap();
        assert_eq!(
            (last["status"].as_str(), last["reason"].as_str()),
            (Some("True"), Some("Successful"))
        );
        let status = autoscalers(&h, kind).get(name).await.unwrap().data["status"].clone();
        assert_eq!(status["lastRecommendation"]["target"], "2Gi", "{status:#}");
        assert_eq!(status["lastRequest"]["name"], rname.as_str());
        let events = events(&h, name).await;
        assert!(
            events
                .iter()
                .any(|(reason, note)| reason == "ExpansionRequested" && note.contains("to 2Gi")),
            "{events:?}"
        );
    }
    no_more_than(&h, Redis, "rd-as", 1, 4).await;
    no_more_than(&h, ZooKeeper, "zk-as", 1, 1).await;

    let metrics = h.controller_metrics().encode();
    for line in [
        "volops_autoscaler_decisions_total{kind=\"RedisAutoscaler\",outcome=\"Expand\"} 1",
        "volops_autoscaler_decisions_total{kind=\"ZooKeeperAutoscaler\",outcome=\"Expand\"} 1",
        "volops_autoscaler_threshold_to_request_seconds_count{kind=\"RedisAutoscaler\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    let usage = "volops_autoscaler_usage_ratio{kind=\"RedisAutoscaler\",autoscaler_namespace=\"demo\",autoscaler=\"rd-as\"} ";
    let ratio: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(usage)?.parse().ok())
        .unwrap();
    assert!((0.42..0.43).contains(&ratio), "{ratio}");

    // It rises again: a second request, from the real capacity (2Gi -> 3Gi).
    fill(&h, "sample-redis", 90.0).await;
    let done = requests_done(&h, Redis, "rd-as", 2).await;
    assert_eq!(size(&done[1], Redis), "3Gi");
    assert_eq!(at(&done[1], "/status/phase"), Some("Successful"));
    h.shutdown().await.unwrap();
}

/// ../shared/kubedb/docs-examples, required when CI=true (as tests/kubedb_docs.rs).
fn kubedb_docs() -> Option<std::path::PathBuf> {
    let dir = repo_root().join("../shared/kubedb/docs-examples");
    if dir.is_dir() {
        return Some(dir);
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{} is required when CI=true",
        dir.display()
    );
    eprintln!("SKIPPED: {} is missing", dir.display());
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubedb_docs_autoscaler_manifests_applied_unchanged_are_acted_on() {
    let Some(docs) = kubedb_docs() else { return };
    let h = harness(ClusterConfig::fast(), every_second(), true).await;
    examples(&h, &[]).await;
    h.apply_file(&docs.join("redis_autoscaling_storage_rd-standalone.yaml"))
        .await
        .unwrap();
    ready(&h, Redis, "rd-standalone").await;
    h.apply_file(&docs.join("redis_autoscaling_storage_rd-as.yaml"))
        .await
        .unwrap();
    let stored = autoscalers(&h, Redis).get("rd-as").await.unwrap();
    assert_eq!(
        at(&stored, "/spec/opsRequestOptions/apply"),
        Some("IfReady"),
        "KubeDB's defaults"
    );
    // usageThreshold 60 in KubeDB's manifest.
    fill(&h, "rd-standalone", 55.0).await;
    decision(&h, Redis, "rd-as", "BelowThreshold").await;
    fill(&h, "rd-standalone", 65.0).await;
    let done = requests_done(&h, Redis, "rd-as", 1).await;
    let r = &done[0];
    assert!(
        r.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("rdops-rd-standalone-")
    );
    assert_eq!(
        at(r, "/status/phase"),
        Some("Successful"),
        "{:#}",
        r.data["status"]
    );
    assert_eq!(size(r, Redis), "2Gi");
    assert_eq!(
        r.data["spec"]["maxRetries"], 1,
        "KubeDB's default maxRetries is carried"
    );
    let db = h.databases(Redis, NS).get("rd-standalone").await.unwrap();
    assert_eq!(at(&db, "/spec/storage/resources/requests/storage"), Some("2Gi"));
    no_more_than(&h, Redis, "rd-as", 1, 3).await;
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_as_the_usage_source() {
    let mut h = harness(ClusterConfig::fast(), every_second(), false).await;
    let scrape = h.sandbox().kubelet_metrics_url().unwrap();
    let prometheus = match volops_sandbox::prometheus::Prometheus::start(&scrape).await {
        Ok(p) => p,
        Err(volops_sandbox::prometheus::PrometheusError::NotInstalled)
            if std::env::var("CI").as_deref() != Ok("true") =>
        {
            eprintln!("SKIPPED: prometheus is not installed");
            return;
        }
        Err(e) => panic!("prometheus: {e}"),
    };
    h.set_autoscaler(AutoscalerConfig {
        interval: INTERVAL,
        source: UsageSourceConfig::Prometheus {
            url: prometheus.url().to_owned(),
        },
    });
    h.start_controller();
    examples(&h, &["redis-standalone.yaml"]).await;
    ready(&h, Redis, "redis-standalone").await;
    autoscaler(
        &h,
        Redis,
        "rd-as",
        "redis-standalone",
        "standalone",
        &format!("{ON}      expansionMode: Online\n"),
    )
    .await;
    decision(&h, Redis, "rd-as", "BelowThreshold").await;
    fill(&h, "redis-standalone", 90.0).await;
    let done = requests_done(&h, Redis, "rd-as", 1).await;
    assert_eq!(
        at(&done[0], "/status/phase"),
        Some("Successful"),
        "{:#}",
        done[0].data["status"]
    );
    assert_eq!(size(&done[0], Redis), "2Gi");
    // Prometheus scrapes the grown volume: 45% of 2Gi, and no second request.
    let message = decision(&h, Redis, "rd-as", "BelowThreshold").await;
    assert!(
        message.contains("45% full"),
        "{message}\nprometheus log:\n{}",
        prometheus.log_tail()
    );
    no_more_than(&h, Redis, "rd-as", 1, 3).await;
    h.shutdown().await.unwrap();
}
