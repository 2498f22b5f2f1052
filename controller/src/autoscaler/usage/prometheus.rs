//! Usage from Prometheus: the kubelets' `kubelet_volume_stats_used_bytes` and
//! `_capacity_bytes` over its HTTP query API (`/api/v1/query`), three instant queries per
//! interval. A sample's time is its scrape time (`timestamp(...)`), not the query's, so a
//! stale scrape is seen as stale. No RBAC in the cluster: only network access to Prometheus.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use volops_shared::autoscale::VolumeUsage;

use super::{UsageError, UsageRead};

const USED: &str = "kubelet_volume_stats_used_bytes";
const CAPACITY: &str = "kubelet_volume_stats_capacity_bytes";
const SCRAPED: &str = "timestamp(kubelet_volume_stats_used_bytes)";
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    /// `[unix seconds, "value"]`.
    value: (f64, String),
}

/// One query's values by series (labels without `__name__`).
type Values = HashMap<BTreeMap<String, String>, f64>;

pub struct PrometheusSource {
    http: reqwest::Client,
    base: String,
}

impl PrometheusSource {
    pub fn new(url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            base: url.trim_end_matches('/').to_owned(),
        }
    }

    async fn query(&self, query: &str) -> Result<Values, UsageError> {
        let url = format!("{}/api/v1/query", self.base);
        let failed = |source| UsageError::Prometheus {
            url: url.clone(),
            source,
        };
        let answer: Answer = self
            .http
            .get(&url)
            .query(&[("query", query)])
            .send()
            .await
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)?;
        values(answer).map_err(|message| UsageError::PrometheusAnswer {
            url: url.clone(),
            query: query.to_owned(),
            message,
        })
    }

    /// Every claim's latest scraped sample.
    pub async fn read(&self) -> UsageRead {
        let mut out = UsageRead::default();
        let (used, capacity, scraped) =
            futures::join!(self.query(USED), self.query(CAPACITY), self.query(SCRAPED));
        match (used, capacity, scraped) {
            (Ok(used), Ok(capacity), Ok(scraped)) => {
                for (ns, usage) in join(&used, &capacity, &scraped) {
                    super::kubelet::merge(&mut out.usage, vec![(ns, usage)]);
                }
            }
            (used, capacity, scraped) => {
                out.errors
                    .extend([used.err(), capacity.err(), scraped.err()].into_iter().flatten());
            }
        }
        out
    }
}

fn values(answer: Answer) -> Result<Values, String> {
    if answer.status != "success" {
        return Err(answer.error.unwrap_or(answer.status));
    }
    let series = answer.data.map(|d| d.result).unwrap_or_default();
    Ok(series
        .into_iter()
        .filter_map(|mut s| {
            s.metric.remove("__name__");
            Some((s.metric, s.value.1.parse::<f64>().ok()?))
        })
        .collect())
}

/// The samples of the series present in all three answers, as (namespace, usage).
fn join(used: &Values, capacity: &Values, scraped: &Values) -> Vec<(String, VolumeUsage)> {
    used.iter()
        .filter_map(|(labels, used)| {
            let ns = labels.get("namespace")?;
            let pvc = labels.get("persistentvolumeclaim")?;
            let at = Timestamp::from_millisecond((scraped.get(labels)? * 1000.0).round() as i64).ok()?;
            let usage = VolumeUsage {
                pvc: pvc.clone(),
                capacity_bytes: *capacity.get(labels)? as i128,
                used_bytes: *used as i128,
                sampled_at: at,
            };
            Some((ns.clone(), usage))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Values {
        values(serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn the_three_answers_join_into_samples_at_their_scrape_time() {
        let labels = r#""namespace": "demo", "persistentvolumeclaim": "data-rd-0", "instance": "k""#;
        let used = answer(&format!(
            r#"{{"status": "success", "data": {{"resultType": "vector", "result": [
                {{"metric": {{"__name__": "{USED}", {labels}}}, "value": [1767225610.5, "9e+08"]}}]}}}}"#
        ));
        let capacity = answer(&format!(
            r#"{{"status": "success", "data": {{"result": [
                {{"metric": {{"__name__": "{CAPACITY}", {labels}}}, "value": [1767225610.5, "1.073741824e+09"]}}]}}}}"#
        ));
        let scraped = answer(&format!(
            r#"{{"status": "success", "data": {{"result": [{{"metric": {{{labels}}}, "value": [1767225610.5, "1767225605.25"]}}]}}}}"#
        ));
        let samples = join(&used, &capacity, &scraped);
        assert_eq!(samples.len(), 1);
        let (ns, v) = &samples[0];
        assert_eq!((ns.as_str(), v.pvc.as_str()), ("demo", "data-rd-0"));
        assert_eq!((v.used_bytes, v.capacity_bytes), (900_000_000, 1 << 30));
        assert_eq!(v.sampled_at.to_string(), "2026-01-01T00:00:05.25Z");
        let failed: Answer = serde_json::from_str(r#"{"status": "error", "error": "parse error"}"#).unwrap();
        assert_eq!(values(failed).err().as_deref(), Some("parse error"));
    }
}
