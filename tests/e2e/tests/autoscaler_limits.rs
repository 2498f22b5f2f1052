//! Issue 22, the storage autoscaler's limits end to end (webhook over HTTPS, kubelet usage
//! through the node proxy, one decision a second): the clamp to `upperBound` and to a policy's
//! `maxSize` (reported), a policy's minimum interval, a stale kubelet sample after an
//! expansion, the emergency path (`apply: Always`), and a Failed expansion's back-off.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod autoscaler_common;

use std::time::Duration;

use autoscaler_common::*;
use volops_e2e::Harness;
use volops_e2e::wait::at;
use volops_sandbox::ClusterConfig;
use volops_shared::DatabaseKind::{Redis, ZooKeeper};

const STANDALONE: &str = "      trigger: \"On\"\n      usageThreshold: 80\n      expansionMode: Online\n";

async fn policy(h: &Harness, spec: &str) {
    let yaml = format!(
        "apiVersion: volops.dev/v1alpha1\nkind: VolumeExpansionPolicy\nmetadata:\n  name: limits\nspec:\n{spec}"
    );
    h.apply_yaml(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{yaml}\n{e}"));
}

async fn standalone(h: &Harness, section: &str) {
    examples(h, &["redis-standalone.yaml"]).await;
    ready(h, Redis, "redis-standalone").await;
    autoscaler(h, Redis, "rd-as", "redis-standalone", "standalone", section).await;
    decision(h, Redis, "rd-as", "BelowThreshold").await;
}

fn has_event(events: &[(String, String)], reason: &str, words: &str) -> bool {
    events.iter().any(|(r, note)| r == reason && note.contains(words))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clamps_to_upper_bound_and_to_a_policy_max_size_are_reported() {
    let h = harness(ClusterConfig::fast(), every_second(), true).await;
    policy(&h, "  maxSize: 1280Mi\n").await;
    standalone(&h, &format!("{STANDALONE}      upperBound: 1200Mi\n")).await;
    examples(&h, &["zookeeper.yaml"]).await;
    ready(&h, ZooKeeper, "zk-quickstart").await;
    let zk = "      trigger: \"On\"\n      usageThreshold: 80\n      expansionMode: Offline\n";
    autoscaler(&h, ZooKeeper, "zk-as", "zk-quickstart", "zookeeper", zk).await;
    fill(&h, "redis-standalone", 85.0).await;
    fill(&h, "zk-quickstart", 85.0).await;
    for (kind, name, size_asked, by, limit) in [
        (Redis, "rd-as", "1200Mi", "upperBound 1200Mi", "upperBound"),
        (
            ZooKeeper,
            "zk-as",
            "1280Mi",
            "VolumeExpansionPolicy \"limits\" maxSize 1280Mi",
            "maxSize",
        ),
    ] {
        let done = requests_done(&h, kind, name, 1).await;
        assert_eq!(size(&done[0], kind), size_asked);
        assert_eq!(
            at(&done[0], "/status/phase"),
            Some("Successful"),
            "{:#}",
            done[0].data["status"]
        );
        let status = autoscalers(&h, kind).get(name).await.unwrap().data["status"].clone();
        assert_eq!(status["lastRecommendation"]["clampedBy"], by, "{status:#}");
        assert_eq!(status["lastRecommendation"]["target"], size_asked);
        let events = events(&h, name).await;
        assert!(
            has_event(
                &events,
                "ExpansionClamped",
                &format!("clamped by {by} (the rule asked for 2Gi)")
            ),
            "{events:?}"
        );
        let metrics = h.controller_metrics().encode();
        let series = format!(
            "volops_autoscaler_clamps_total{{kind=\"{}\",limit=\"{limit}\"}} 1",
            autoscaler_kind(kind)
        );
        assert!(metrics.contains(&series), "{series}:\n{metrics}");
    }
    // Full again at the limit: blocked and reported, never a request past it.
    fill(&h, "redis-standalone", 95.0).await;
    let message = decision(&h, Redis, "rd-as", "AtLimit").await;
    assert!(message.contains("already reach upperBound 1200Mi"), "{message}");
    assert_eq!(phase(&h, Redis, "rd-as").await, "Failed");
    no_more_than(&h, Redis, "rd-as", 1, 3).await;
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_minimum_interval_holds_the_next_expansion() {
    let h = harness(ClusterConfig::fast(), every_second(), true).await;
    policy(&h, "  minExpansionInterval: 1h\n").await;
    standalone(&h, STANDALONE).await;
    fill(&h, "redis-standalone", 85.0).await;
    let done = requests_done(&h, Redis, "rd-as", 1).await;
    assert_eq!(at(&done[0], "/status/phase"), Some("Successful"));
    fill(&h, "redis-standalone", 90.0).await;
    let message = decision(&h, Redis, "rd-as", "MinInterval").await;
    assert!(
        message.contains("VolumeExpansionPolicy \"limits\" minExpansionInterval 1h is 1h between expansions"),
        "{message}"
    );
    no_more_than(&h, Redis, "rd-as", 1, 4).await;
    assert!(has_event(
        &events(&h, "rd-as").await,
        "MinInterval",
        "next decision at"
    ));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_older_than_the_expansion_is_never_acted_on() {
    // The kubelet measures a volume every 8 s (a real one every minute): after the expansion
    // it still serves the 85% of the old size for a while.
    let cluster = ClusterConfig {
        volume_stats_period: Duration::from_secs(8),
        ..ClusterConfig::fast()
    };
    let h = harness(cluster, every_second(), true).await;
    standalone(&h, STANDALONE).await;
    fill(&h, "redis-standalone", 85.0).await;
    let mut seen: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let done = loop {
        if let Some(c) = condition(&h, Redis, "rd-as", "Decision").await {
            let reason = c["reason"].as_str().unwrap_or_default().to_owned();
            if seen.last() != Some(&reason) {
                seen.push(reason);
            }
        }
        let list = owned(&h, Redis, "rd-as").await;
        assert!(
            list.len() <= 1,
            "acted on a stale sample: {:?} after {seen:?}",
            names(&list)
        );
        let fresh = seen.last().is_some_and(|r| r == "BelowThreshold") && seen.iter().any(|r| r == "Expand");
        if fresh && list.len() == 1 {
            break list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fresh sample after the expansion: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(at(&done[0], "/status/phase"), Some("Successful"));
    assert!(
        seen.iter().any(|r| r == "StaleSamples"),
        "the stale sample was not reported: {seen:?}"
    );
    no_more_than(&h, Redis, "rd-as", 1, 2).await;
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_grown_with_apply_always() {
    let h = harness(ClusterConfig::fast(), every_second(), true).await;
    policy(&h, "  emergencyUsageThreshold: 95\n").await;
    standalone(&h, STANDALONE).await;
    fill(&h, "redis-standalone", 100.0).await;
    let done = requests_done(&h, Redis, "rd-as", 1).await;
    assert_eq!(
        at(&done[0], "/spec/apply"),
        Some("Always"),
        "{:#}",
        done[0].data["spec"]
    );
    assert_eq!(at(&done[0], "/status/phase"), Some("Successful"));
    let events = events(&h, "rd-as").await;
    assert!(
        has_event(
            &events,
            "EmergencyExpansion",
            "above the emergency threshold: apply Always"
        ),
        "{events:?}"
    );
    h.shutdown().await.unwrap();
}

async fn failing_redis(h: &Harness) {
    examples(h, &[]).await;
    let yaml = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: broken\n\
                provisioner: sandbox.volops.dev/csi\nallowVolumeExpansion: true\n\
                parameters:\n  sandbox.volops.dev/resize-mode: fail\n---\n\
                apiVersion: kubedb.com/v1\nkind: Redis\nmetadata:\n  name: rd\n  namespace: demo\n\
                spec:\n  version: 8.2.2\n  storage:\n    storageClassName: broken\n    accessModes: [ReadWriteOnce]\n\
                \x20   resources:\n      requests:\n        storage: 1Gi\n  deletionPolicy: WipeOut\n";
    h.apply_yaml(yaml).await.unwrap();
    ready(h, Redis, "rd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_expansion_backs_off_instead_of_retrying() {
    let h = harness(ClusterConfig::fast(), every_second(), true).await;
    failing_redis(&h).await;
    autoscaler(&h, Redis, "rd-as", "rd", "standalone", STANDALONE).await;
    fill(&h, "rd", 90.0).await;
    let done = requests_done(&h, Redis, "rd-as", 1).await;
    assert_eq!(
        at(&done[0], "/status/phase"),
        Some("Failed"),
        "{:#}",
        done[0].data["status"]
    );
    let last = eventually("LastRequest False", || async {
        condition(&h, Redis, "rd-as", "LastRequest")
            .await
            .filter(|c| c["status"] == "False")
    })
    .await;
    assert_eq!(last["reason"], "Failed");
    assert_eq!(phase(&h, Redis, "rd-as").await, "Failed");
    // Once a sample newer than the failure is in: the back-off (15 minutes after one failure).
    let message = decision(&h, Redis, "rd-as", "FailedBackoff").await;
    assert!(message.contains("backing off; next decision at"), "{message}");
    no_more_than(&h, Redis, "rd-as", 1, 5).await;
    assert_eq!(phase(&h, Redis, "rd-as").await, "Failed");
    let status = autoscalers(&h, Redis).get("rd-as").await.unwrap().data["status"].clone();
    assert_eq!(status["lastRequest"]["consecutiveFailures"], 1, "{status:#}");
    assert!(has_event(
        &events(&h, "rd-as").await,
        "BackingOff",
        "1 expansion(s) failed in a row"
    ));
    h.shutdown().await.unwrap();
}
