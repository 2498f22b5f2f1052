//! Where the volumes' usage comes from (docs/ARCHITECTURE.md, "Storage autoscaling at run
//! time"): the kubelets' Summary API through the API server's node proxy (no Prometheus
//! needed), or Prometheus's `kubelet_volume_stats_*` over its HTTP query API. Either answers
//! the latest sample of every PVC it sees, once per interval for all autoscalers.

pub mod kubelet;
pub mod prometheus;

use std::collections::HashMap;

use volops_shared::autoscale::VolumeUsage;

/// The latest sample of each PVC, by (namespace, claim).
pub type UsageMap = HashMap<(String, String), VolumeUsage>;

/// `--usage-source`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum UsageSourceConfig {
    /// The kubelets' Summary API through the node proxy (RBAC: `nodes` list, `nodes/proxy` get).
    #[default]
    Kubelet,
    /// A Prometheus server's HTTP API at this base URL (no RBAC in the cluster).
    Prometheus { url: String },
}

/// Why a usage read failed (one node, or the whole Prometheus query).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("listing the nodes: {0}")]
    Nodes(#[source] kube::Error),
    #[error("reading the kubelet Summary of node {node}: {source}")]
    Summary {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("the kubelet Summary of node {node} is not the Summary API's JSON: {source}")]
    SummaryShape {
        node: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("querying Prometheus at {url}: {source}")]
    Prometheus {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Prometheus at {url} answered {query:?} with an error: {message}")]
    PrometheusAnswer {
        url: String,
        query: String,
        message: String,
    },
}

/// What one interval read: the samples, and the failures (a node down is not the end of it).
#[derive(Debug, Default)]
pub struct UsageRead {
    pub usage: UsageMap,
    pub errors: Vec<UsageError>,
}

/// A usage source, built once per leadership term.
pub enum UsageSource {
    Kubelet(kube::Client),
    Prometheus(prometheus::PrometheusSource),
}

impl UsageSource {
    pub fn new(client: &kube::Client, config: &UsageSourceConfig) -> Self {
        match config {
            UsageSourceConfig::Kubelet => Self::Kubelet(client.clone()),
            UsageSourceConfig::Prometheus { url } => Self::Prometheus(prometheus::PrometheusSource::new(url)),
        }
    }

    /// Every PVC's latest sample that the source knows.
    pub async fn read(&self) -> UsageRead {
        match self {
            Self::Kubelet(client) => kubelet::read(client).await,
            Self::Prometheus(p) => p.read().await,
        }
    }
}
