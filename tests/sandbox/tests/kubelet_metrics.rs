//! The kubelets' volume metrics (`kubelet_volume_stats_*`): through the node proxy, on the
//! plain-HTTP scrape endpoint, and scraped by a real Prometheus server.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "cluster_common.rs"]
mod cluster;
mod common;
mod kubelet;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::*;
use kubelet::*;
use volops_sandbox::Fill;
use volops_sandbox::prometheus::{Prometheus, PrometheusError};

/// One sample line of the text format: (name, labels, value).
type Series = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus text format (the subset kubelet writes: gauges with labels); panics
/// on anything malformed, so the test checks the format too.
fn parse(text: &str) -> Vec<Series> {
    let mut typed = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "gauge", "{line}");
            typed.push(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let (name, labels) = series
            .split_once('{')
            .unwrap_or_else(|| panic!("no labels {line:?}"));
        assert!(
            typed.last().is_some_and(|t| t == name),
            "{name} has no TYPE before it"
        );
        let labels = labels
            .strip_suffix('}')
            .unwrap()
            .split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        out.push((name.to_owned(), labels, value.parse().unwrap()));
    }
    out
}

/// The value of `metric` for claim `ns/claim`.
fn value(series: &[Series], metric: &str, ns: &str, claim: &str) -> Option<f64> {
    series
        .iter()
        .find(|(n, l, _)| n == metric && l["namespace"] == ns && l["persistentvolumeclaim"] == claim)
        .map(|(_, _, v)| *v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_metrics_report_every_mounted_claim() {
    let (sb, client) = sandbox().await;
    namespace(&client, "m").await;
    storage_class(&client, "standard", "online").await;
    claim(&client, "m", "data", "standard", "1Gi").await;
    let pod = pod_with(&client, "m", "p", "data").await;
    sb.fill_volume("m", "data", Fill::Bytes(700 << 20)).await.unwrap();
    // The kubelet sees the pod through its informer, a moment after the test does.
    wait_volume(&client, &node_of(&pod), "m", "data", |v| {
        u(v, "usedBytes") == 700 << 20
    })
    .await;

    let text = raw_get(&client, &format!("/api/v1/nodes/{}/proxy/metrics", node_of(&pod)))
        .await
        .unwrap();
    let series = parse(&text);
    let get = |m: &str| value(&series, m, "m", "data").unwrap_or_else(|| panic!("{m} missing:\n{text}"));
    assert_eq!(get("kubelet_volume_stats_used_bytes"), (700u64 << 20) as f64);
    assert_eq!(get("kubelet_volume_stats_capacity_bytes"), GI as f64);
    assert_eq!(
        get("kubelet_volume_stats_available_bytes"),
        (GI - (700 << 20)) as f64
    );
    assert_eq!(
        get("kubelet_volume_stats_inodes"),
        get("kubelet_volume_stats_inodes_free") + get("kubelet_volume_stats_inodes_used")
    );
    assert_eq!(series.len(), 6, "six families, one claim:\n{text}");

    // The same, without credentials, on the plain-HTTP scrape endpoint.
    let url = sb.kubelet_metrics_url().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let plain = parse(&resp.text().await.unwrap());
    assert_eq!(
        value(&plain, "kubelet_volume_stats_used_bytes", "m", "data"),
        Some((700u64 << 20) as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_filled_value() {
    let (sb, client) = sandbox().await;
    namespace(&client, "prom").await;
    storage_class(&client, "standard", "online").await;
    claim(&client, "prom", "data", "standard", "1Gi").await;
    pod_with(&client, "prom", "p", "data").await;
    let prom = match Prometheus::start(&sb.kubelet_metrics_url().unwrap()).await {
        Ok(p) => p,
        Err(PrometheusError::NotInstalled) => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "prometheus is required when CI=true"
            );
            eprintln!("SKIPPED: prometheus not found on PATH");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let filled = sb.fill_volume("prom", "data", Fill::Percent(75.0)).await.unwrap();
    let query = r#"kubelet_volume_stats_used_bytes{namespace="prom",persistentvolumeclaim="data"}"#;
    let want = filled.used_bytes as f64;
    let result = prom
        .wait_for(query, Duration::from_secs(30), |r| {
            r.iter().any(|s| s.value == want)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", prom.log_tail()));
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0].labels["job"], volops_sandbox::prometheus::JOB);
    let ratio = prom
        .query(
            r#"kubelet_volume_stats_used_bytes{namespace="prom"} / kubelet_volume_stats_capacity_bytes{namespace="prom"}"#,
        )
        .await
        .unwrap();
    assert_eq!(ratio.len(), 1);
    assert!((ratio[0].value - 0.75).abs() < 1e-6, "{ratio:?}");
}
