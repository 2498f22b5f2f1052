//! Usage from the kubelets' Summary API (`/stats/summary`) through the API server's node
//! proxy: one node list and one Summary per node each interval, whatever the number of
//! databases (docs/PERFORMANCE.md, "Storage autoscaler"). A volume with a `pvcRef` is a claim.

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client, api::ListParams, core::PartialObjectMeta};
use serde::Deserialize;
use volops_shared::autoscale::VolumeUsage;

use super::{UsageError, UsageMap, UsageRead};

/// Summaries read at once (each is one request through the API server).
const CONCURRENT_NODES: usize = 8;

#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    pods: Vec<PodStats>,
}

#[derive(Deserialize)]
struct PodStats {
    #[serde(default)]
    volume: Vec<VolumeStats>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeStats {
    time: Option<Timestamp>,
    capacity_bytes: Option<u64>,
    used_bytes: Option<u64>,
    pvc_ref: Option<PvcRef>,
}

#[derive(Deserialize)]
struct PvcRef {
    name: String,
    namespace: String,
}

/// The claims' samples of one Summary (volumes without `pvcRef`, time or sizes are skipped).
pub fn claims_of(summary: &str, node: &str) -> Result<Vec<(String, VolumeUsage)>, UsageError> {
    let summary: Summary = serde_json::from_str(summary).map_err(|source| UsageError::SummaryShape {
        node: node.to_owned(),
        source,
    })?;
    let volumes = summary.pods.into_iter().flat_map(|p| p.volume);
    Ok(volumes
        .filter_map(|v| {
            let pvc = v.pvc_ref?;
            let usage = VolumeUsage {
                pvc: pvc.name,
                capacity_bytes: i128::from(v.capacity_bytes?),
                used_bytes: i128::from(v.used_bytes?),
                sampled_at: v.time?,
            };
            Some((pvc.namespace, usage))
        })
        .collect())
}

async fn summary(client: &Client, node: String) -> Result<Vec<(String, VolumeUsage)>, UsageError> {
    let path = format!("/api/v1/nodes/{node}/proxy/stats/summary");
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| UsageError::Summary {
            node: node.clone(),
            source: kube::Error::HttpError(e),
        })?;
    let text = client
        .request_text(request)
        .await
        .map_err(|source| UsageError::Summary {
            node: node.clone(),
            source,
        })?;
    claims_of(&text, &node)
}

/// Every claim's latest sample, from every node's Summary.
pub async fn read(client: &Client) -> UsageRead {
    let mut out = UsageRead::default();
    let nodes: Api<PartialObjectMeta<Node>> = Api::all(client.clone());
    let names: Vec<String> = match nodes.list_metadata(&ListParams::default()).await {
        Ok(list) => list.items.into_iter().filter_map(|n| n.metadata.name).collect(),
        Err(e) => {
            out.errors.push(UsageError::Nodes(e));
            return out;
        }
    };
    let mut reads = futures::stream::iter(names.into_iter().map(|n| summary(client, n)))
        .buffer_unordered(CONCURRENT_NODES);
    while let Some(read) = reads.next().await {
        match read {
            Ok(claims) => merge(&mut out.usage, claims),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// Adds samples, keeping the newest of a claim seen twice (a pod moving between nodes).
pub fn merge(usage: &mut UsageMap, claims: Vec<(String, VolumeUsage)>) {
    for (ns, v) in claims {
        let key = (ns, v.pvc.clone());
        match usage.get(&key) {
            Some(old) if old.sampled_at >= v.sampled_at => {}
            _ => {
                usage.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_summary_and_other_volumes_skipped() {
        let summary = r#"{"node": {"nodeName": "n0"}, "pods": [
            {"podRef": {"name": "rd-0", "namespace": "demo"}, "volume": [
                {"time": "2026-01-01T00:00:05Z", "capacityBytes": 1073741824, "usedBytes": 900000000,
                 "availableBytes": 1, "name": "data", "pvcRef": {"name": "data-rd-0", "namespace": "demo"}},
                {"time": "2026-01-01T00:00:05Z", "capacityBytes": 1, "usedBytes": 1, "name": "config"}]},
            {"podRef": {"name": "x", "namespace": "demo"}}]}"#;
        let claims = claims_of(summary, "n0").unwrap();
        assert_eq!(claims.len(), 1);
        let (ns, v) = &claims[0];
        assert_eq!((ns.as_str(), v.pvc.as_str()), ("demo", "data-rd-0"));
        assert_eq!((v.capacity_bytes, v.used_bytes), (1 << 30, 900_000_000));
        assert_eq!(v.sampled_at.to_string(), "2026-01-01T00:00:05Z");
        assert!(matches!(
            claims_of("<html>", "n0"),
            Err(UsageError::SummaryShape { .. })
        ));
    }

    #[test]
    fn the_newest_sample_of_a_claim_wins() {
        let at = |s: &str| VolumeUsage {
            pvc: "p".into(),
            capacity_bytes: 1,
            used_bytes: 1,
            sampled_at: s.parse().unwrap(),
        };
        let mut usage = UsageMap::new();
        merge(&mut usage, vec![("ns".into(), at("2026-01-01T00:00:05Z"))]);
        merge(&mut usage, vec![("ns".into(), at("2026-01-01T00:00:01Z"))]);
        let kept = &usage[&("ns".to_owned(), "p".to_owned())];
        assert_eq!(kept.sampled_at.to_string(), "2026-01-01T00:00:05Z");
    }
}
