//! Test support: a real Prometheus server (the `prometheus` binary, Debian's package) scraping
//! a plain-HTTP endpoint, e.g. [`crate::Sandbox::kubelet_metrics_url`], every second.
//!
//! ```no_run
//! # async fn demo(sb: &volops_sandbox::Sandbox) -> Result<(), volops_sandbox::prometheus::PrometheusError> {
//! let url = sb.kubelet_metrics_url().unwrap_or_default();
//! let prom = volops_sandbox::prometheus::Prometheus::start(&url).await?;
//! let samples = prom.query("kubelet_volume_stats_used_bytes").await?;
//! # drop(samples); Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the server may take to start and scrape once.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The job name of the scrape (the `job` label of every series).
pub const JOB: &str = "kubelet";

/// What can go wrong starting or asking Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("the prometheus binary is not on PATH (Debian: apt-get install prometheus)")]
    NotInstalled,
    #[error("scrape URL {0:?} is not an http:// URL")]
    BadTarget(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("prometheus did not get ready: {0}")]
    NotReady(String),
    #[error("query {query:?}: {reason}")]
    Query { query: String, reason: String },
}

/// One series of an instant query's vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A running Prometheus server; stopped when dropped.
#[derive(Debug)]
pub struct Prometheus {
    child: Child,
    url: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `prometheus` on PATH (or `$VOLOPS_PROMETHEUS`).
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VOLOPS_PROMETHEUS") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    })
}

/// The scrape configuration: one job, every second.
fn config(target: &reqwest::Url) -> Result<String, PrometheusError> {
    let bad = || PrometheusError::BadTarget(target.to_string());
    if target.scheme() != "http" {
        return Err(bad());
    }
    let host = target.host_str().ok_or_else(bad)?;
    let port = target.port_or_known_default().ok_or_else(bad)?;
    Ok(format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: {JOB}\n    metrics_path: {path:?}\n    static_configs:\n      - targets: [\"{host}:{port}\"]\n",
        path = target.path()
    ))
}

fn free_port() -> Result<u16, PrometheusError> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| PrometheusError::Io("free port".into(), e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| PrometheusError::Io("free port".into(), e))
}

impl Prometheus {
    /// Starts Prometheus (temporary directory, free port, scrape interval 1s) scraping
    /// `scrape_url`, and returns once it has scraped the target successfully (`up == 1`).
    pub async fn start(scrape_url: &str) -> Result<Prometheus, PrometheusError> {
        let bin = binary().ok_or(PrometheusError::NotInstalled)?;
        let target =
            reqwest::Url::parse(scrape_url).map_err(|_| PrometheusError::BadTarget(scrape_url.into()))?;
        let dir = tempfile::tempdir().map_err(|e| PrometheusError::Io("temporary directory".into(), e))?;
        let cfg_path = dir.path().join("prometheus.yml");
        std::fs::write(&cfg_path, config(&target)?)
            .map_err(|e| PrometheusError::Io(cfg_path.display().to_string(), e))?;
        let port = free_port()?;
        let log_path = dir.path().join("prometheus.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| PrometheusError::Io(log_path.display().to_string(), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| PrometheusError::Io("log".into(), e))?;
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=1h")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| PrometheusError::Io(format!("starting {}", bin.display()), e))?;
        let mut prom = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            dir,
        };
        prom.wait_scraped().await?;
        Ok(prom)
    }

    /// `http://127.0.0.1:PORT`: the server's HTTP API and UI.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The end of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    async fn wait_scraped(&mut self) -> Result<(), PrometheusError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let up = format!("up{{job=\"{JOB}\"}} == 1");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(PrometheusError::NotReady(format!(
                    "exited ({status}): {}",
                    self.log_tail()
                )));
            }
            if matches!(self.query(&up).await, Ok(v) if !v.is_empty()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(PrometheusError::NotReady(format!(
                    "no successful scrape in {START_TIMEOUT:?}: {}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// An instant query (`/api/v1/query`) whose result is a vector.
    pub async fn query(&self, promql: &str) -> Result<Vec<PromSample>, PrometheusError> {
        let fail = |reason: String| PrometheusError::Query {
            query: promql.to_owned(),
            reason,
        };
        let resp = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let body: Value = resp.json().await.map_err(|e| fail(e.to_string()))?;
        if body["status"] != "success" {
            return Err(fail(body.to_string()));
        }
        let result = body["data"]["result"]
            .as_array()
            .ok_or_else(|| fail(format!("not a vector: {body}")))?;
        result
            .iter()
            .map(|s| sample(s).ok_or_else(|| fail(format!("bad sample {s}"))))
            .collect()
    }

    /// Queries until `done` holds for the result (or `timeout` passes), as each scrape brings
    /// new samples; returns the last result.
    pub async fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        done: impl Fn(&[PromSample]) -> bool,
    ) -> Result<Vec<PromSample>, PrometheusError> {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.query(promql).await?;
            if done(&result) {
                return Ok(result);
            }
            if Instant::now() > deadline {
                return Err(PrometheusError::Query {
                    query: promql.to_owned(),
                    reason: format!("still {result:?} after {timeout:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn sample(s: &Value) -> Option<PromSample> {
    let labels = s["metric"]
        .as_object()?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let value = s["value"].get(1)?.as_str()?.parse().ok()?;
    Some(PromSample { labels, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_config_names_the_target() {
        let url = reqwest::Url::parse("http://127.0.0.1:4567/metrics").expect("url");
        let cfg = config(&url).expect("config");
        assert!(cfg.contains("scrape_interval: 1s"));
        assert!(cfg.contains("targets: [\"127.0.0.1:4567\"]"));
        assert!(cfg.contains("metrics_path: \"/metrics\""));
        let https = reqwest::Url::parse("https://127.0.0.1:1/metrics").expect("url");
        assert!(config(&https).is_err());
    }

    #[test]
    fn vector_samples_read() {
        let s = serde_json::json!({"metric": {"__name__": "up", "job": "kubelet"}, "value": [1.5, "1"]});
        let got = sample(&s).expect("sample");
        assert_eq!(got.value, 1.0);
        assert_eq!(got.labels["job"], "kubelet");
    }
}
