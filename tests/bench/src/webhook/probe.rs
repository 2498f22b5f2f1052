//! Waits on the webhook's plain-HTTP probes until its caches hold what was created.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::populate::Counts;

/// A cache's size from the webhook's `/metrics` text.
pub fn cache_size(metrics: &str, cache: &str) -> Option<usize> {
    let prefix = format!("volops_webhook_cache_objects{{cache=\"{cache}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
}

/// Whether the caches hold at least `want`.
pub fn holds(metrics: &str, want: &Counts) -> bool {
    let size = |c| cache_size(metrics, c).unwrap_or(0);
    size("persistentvolumeclaims") >= want.pvcs
        && size("redis") + size("zookeeper") >= want.databases
        && size("redisopsrequests") + size("zookeeperopsrequests") >= want.ops_requests
        && size("namespaces") >= want.namespaces
        && size("resourcequotas") >= want.namespaces
}

async fn get(http: &reqwest::Client, addr: SocketAddr, path: &str) -> Option<String> {
    let resp = http.get(format!("http://{addr}{path}")).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.text().await.ok()
}

/// Polls `/readyz` and `/metrics` (the probe port has no watch) until synced or `within`.
pub async fn wait_synced(addr: SocketAddr, want: &Counts, within: Duration) -> Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if get(&http, addr, "/readyz").await.is_some()
            && let Some(m) = get(&http, addr, "/metrics").await
            && holds(&m, want)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("webhook caches not synced to {want:?} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cache_sizes_from_metrics() {
        let m = "# HELP x\nvolops_webhook_cache_objects{cache=\"persistentvolumeclaims\"} 120\n\
                 volops_webhook_cache_objects{cache=\"redis\"} 14\n\
                 volops_webhook_cache_objects{cache=\"zookeeper\"} 6\n\
                 volops_webhook_cache_objects{cache=\"redisopsrequests\"} 4\n\
                 volops_webhook_cache_objects{cache=\"zookeeperopsrequests\"} 1\n\
                 volops_webhook_cache_objects{cache=\"namespaces\"} 5\n\
                 volops_webhook_cache_objects{cache=\"resourcequotas\"} 1\n";
        assert_eq!(cache_size(m, "persistentvolumeclaims"), Some(120));
        assert_eq!(cache_size(m, "storageclasses"), None);
        let want = Counts {
            namespaces: 1,
            databases: 20,
            pvcs: 120,
            ops_requests: 5,
        };
        assert!(holds(m, &want));
        assert!(!holds(m, &Counts { pvcs: 121, ..want }));
        assert!(!holds(
            m,
            &Counts {
                databases: 21,
                ..want
            }
        ));
    }
}
