//! The simulated kubelets' stats: per node, the Summary API (`/stats/summary`) and the volume
//! metrics (`/metrics`) of the running pods' volumes, measured on simulated file systems; and
//! the cluster's own control to fill a volume ([`Kubelets::fill_volume`]), which knows
//! nothing of who reads the stats.
//!
//! A volume's file system is its PersistentVolume: its size is the claim's
//! `status.capacity` (which grows when the node finishes a file system resize, see
//! [`crate::storage::resize`]) and its data stays when it grows or its pod moves.

pub mod fs;
pub mod metrics;
pub mod summary;

use crate::nodes::{KUBELET_PORT, NODE_FS_BYTES, NodeInfo};
use crate::storage;
use crate::util::now_string;
use fs::{Fill, FsStats, INITIAL_USED_BYTES, measure};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Volume};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use metrics::ClaimStats;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use summary::Sample;

/// What the node's own root file system holds (images, logs).
const NODE_FS_USED_BYTES: u64 = 20 << 30;
/// What a configMap, secret or emptyDir volume holds.
const SMALL_VOLUME_BYTES: u64 = 4096;

/// Why a kubelet did not answer.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// No simulated kubelet runs this node.
    #[error("no kubelet runs on node {0:?}")]
    UnknownNode(String),
    /// The node's kubelet is stopped ([`Kubelets::set_reachable`]); the message is what the
    /// API server's proxy reports when it cannot dial a kubelet.
    #[error("dial tcp {ip}:{port}: connect: connection refused", port = KUBELET_PORT)]
    Unreachable { node: String, ip: String },
}

/// Why a volume could not be filled or read.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("persistentvolumeclaims \"{name}\" not found in namespace {namespace:?}")]
    ClaimNotFound { namespace: String, name: String },
    #[error("claim {namespace}/{name} has no volume yet (not Bound)")]
    NotBound { namespace: String, name: String },
    #[error("reading claim {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// A volume's usage as the cluster's control reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeUsage {
    pub namespace: String,
    pub persistent_volume_claim: String,
    /// The PersistentVolume (the file system).
    pub volume_name: String,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Default)]
struct Disks {
    /// PV name -> bytes written on it.
    used: HashMap<String, u64>,
    /// PV name -> the last measurement and when it was taken.
    samples: HashMap<String, (Instant, Sample)>,
}

struct Inner {
    client: kube::Client,
    nodes: Vec<NodeInfo>,
    pods: Store<Pod>,
    pvcs: Store<PersistentVolumeClaim>,
    period: Duration,
    disks: Mutex<Disks>,
    stopped: Mutex<HashSet<String>>,
}

/// The kubelets of the simulated cluster (cheap to clone).
#[derive(Clone)]
pub struct Kubelets {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Kubelets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelets")
            .field("nodes", &self.inner.nodes)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Kubelets {
    pub(crate) fn new(
        client: kube::Client,
        nodes: Vec<NodeInfo>,
        pods: Store<Pod>,
        pvcs: Store<PersistentVolumeClaim>,
        period: Duration,
    ) -> Self {
        let inner = Inner {
            client,
            nodes,
            pods,
            pvcs,
            period,
            disks: Mutex::default(),
            stopped: Mutex::default(),
        };
        Kubelets {
            inner: Arc::new(inner),
        }
    }

    /// The nodes with a kubelet, in registration order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.inner.nodes
    }

    /// Stops (false) or restarts (true) the kubelet of `node`: while stopped, its stats
    /// cannot be read, as when a node is down.
    pub fn set_reachable(&self, node: &str, reachable: bool) {
        let mut stopped = lock(&self.inner.stopped);
        if reachable {
            stopped.remove(node);
        } else {
            stopped.insert(node.to_owned());
        }
    }

    fn node(&self, name: &str) -> Result<&NodeInfo, KubeletError> {
        let node = self
            .inner
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| KubeletError::UnknownNode(name.to_owned()))?;
        if lock(&self.inner.stopped).contains(name) {
            return Err(KubeletError::Unreachable {
                node: name.to_owned(),
                ip: node.internal_ip.clone(),
            });
        }
        Ok(node)
    }

    /// The running pods bound to `node`, by namespace and name.
    fn running_pods(&self, node: &str) -> Vec<Arc<Pod>> {
        let mut pods: Vec<Arc<Pod>> = self
            .inner
            .pods
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        pods.sort_by_key(|p| (p.namespace(), p.name_any()));
        pods
    }

    /// The measurement of volume `pv` of `capacity` bytes: taken now, or the cached one while
    /// it is younger than the stats period.
    fn sample(&self, pv: &str, capacity: u64) -> Sample {
        let mut disks = lock(&self.inner.disks);
        if let Some((at, cached)) = disks.samples.get(pv)
            && at.elapsed() < self.inner.period
        {
            return cached.clone();
        }
        let used = disks.used.get(pv).copied().unwrap_or(INITIAL_USED_BYTES);
        let sample = Sample {
            time: now_string(),
            stats: measure(capacity, used),
        };
        if !self.inner.period.is_zero() {
            disks
                .samples
                .insert(pv.to_owned(), (Instant::now(), sample.clone()));
        }
        sample
    }

    /// The sample of claim `ns/name` if it is bound and its file system has a size.
    fn claim_sample(&self, ns: &str, name: &str) -> Option<Sample> {
        let pvc = self.inner.pvcs.get(&ObjectRef::new(name).within(ns))?;
        let pv = pvc.spec.as_ref()?.volume_name.clone()?;
        let capacity = u64::try_from(storage::capacity(&pvc)?).ok()?;
        Some(self.sample(&pv, capacity))
    }

    /// What the node's root file system (and volumes living on it) measures.
    fn node_fs() -> Sample {
        Sample {
            time: now_string(),
            stats: measure(NODE_FS_BYTES, NODE_FS_USED_BYTES),
        }
    }

    /// The stats of one pod volume: claims by their volume, configMaps, secrets, emptyDirs
    /// and the like on the node's file system; other kinds (hostPath) report nothing.
    fn volume(&self, ns: &str, v: &Volume) -> Option<Value> {
        if let Some(claim) = &v.persistent_volume_claim {
            let sample = self.claim_sample(ns, &claim.claim_name)?;
            return Some(summary::volume_json(
                &v.name,
                Some((ns, &claim.claim_name)),
                &sample,
            ));
        }
        let on_node = v.empty_dir.is_some()
            || v.config_map.is_some()
            || v.secret.is_some()
            || v.projected.is_some()
            || v.downward_api.is_some();
        on_node.then(|| {
            let mut sample = Self::node_fs();
            sample.stats = FsStats {
                used_bytes: SMALL_VOLUME_BYTES,
                inodes_used: 1,
                ..sample.stats
            };
            summary::volume_json(&v.name, None, &sample)
        })
    }

    /// kubelet's `/stats/summary` of `node`.
    pub fn summary(&self, node: &str) -> Result<Value, KubeletError> {
        let info = self.node(node)?;
        let pods = self
            .running_pods(node)
            .iter()
            .map(|pod| {
                let ns = pod.namespace().unwrap_or_default();
                let volumes = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.volumes.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|v| self.volume(&ns, v))
                    .collect();
                summary::pod_json(pod, volumes)
            })
            .collect();
        Ok(summary::summary_json(info, &Self::node_fs(), pods))
    }

    /// The claims mounted by running pods on `node` with their stats.
    fn claim_stats(&self, node: &str, out: &mut ClaimStats) {
        for pod in self.running_pods(node) {
            let ns = pod.namespace().unwrap_or_default();
            for claim in storage::resizer::claims_of(&pod) {
                let key = (ns.clone(), claim);
                if out.contains_key(&key) {
                    continue;
                }
                if let Some(sample) = self.claim_sample(&key.0, &key.1) {
                    out.insert(key, sample.stats);
                }
            }
        }
    }

    /// kubelet's `/metrics` of `node` (its volume stats families).
    pub fn metrics(&self, node: &str) -> Result<String, KubeletError> {
        self.node(node)?;
        let mut claims = ClaimStats::new();
        self.claim_stats(node, &mut claims);
        Ok(metrics::render(&claims))
    }

    /// The volume metrics of every reachable node in one exposition (what scraping every
    /// kubelet gathers, without the target labels).
    pub fn metrics_all(&self) -> String {
        let mut claims = ClaimStats::new();
        for node in &self.inner.nodes {
            if self.node(&node.name).is_ok() {
                self.claim_stats(&node.name, &mut claims);
            }
        }
        metrics::render(&claims)
    }

    /// Reads claim `ns/name` from the API (not the informer: a claim just seen Bound by the
    /// caller is found) and returns its PV and file system size.
    async fn volume_of(&self, ns: &str, name: &str) -> Result<(String, u64), VolumeError> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.inner.client.clone(), ns);
        let pvc = api.get_opt(name).await.map_err(|source| VolumeError::Api {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            source,
        })?;
        let pvc = pvc.ok_or_else(|| VolumeError::ClaimNotFound {
            namespace: ns.to_owned(),
            name: name.to_owned(),
        })?;
        let pv = pvc.spec.as_ref().and_then(|s| s.volume_name.clone());
        let capacity = storage::capacity(&pvc).and_then(|c| u64::try_from(c).ok());
        match (pv, capacity) {
            (Some(pv), Some(capacity)) => Ok((pv, capacity)),
            _ => Err(VolumeError::NotBound {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    fn usage(ns: &str, name: &str, pv: String, stats: FsStats) -> VolumeUsage {
        VolumeUsage {
            namespace: ns.to_owned(),
            persistent_volume_claim: name.to_owned(),
            volume_name: pv,
            capacity_bytes: stats.capacity_bytes,
            used_bytes: stats.used_bytes,
            available_bytes: stats.available_bytes,
        }
    }

    /// Writes to (or deletes from) the volume of claim `ns/name` until `fill` is used; past
    /// the capacity the disk is full. Kubelets report it from their next measurement.
    pub async fn fill_volume(&self, ns: &str, name: &str, fill: Fill) -> Result<VolumeUsage, VolumeError> {
        let (pv, capacity) = self.volume_of(ns, name).await?;
        let used = fill.used_of(capacity);
        lock(&self.inner.disks).used.insert(pv.clone(), used);
        Ok(Self::usage(ns, name, pv, measure(capacity, used)))
    }

    /// The current usage of the volume of claim `ns/name` (what a measurement now shows).
    pub async fn volume_usage(&self, ns: &str, name: &str) -> Result<VolumeUsage, VolumeError> {
        let (pv, capacity) = self.volume_of(ns, name).await?;
        let used = lock(&self.inner.disks)
            .used
            .get(&pv)
            .copied()
            .unwrap_or(INITIAL_USED_BYTES);
        Ok(Self::usage(ns, name, pv, measure(capacity, used)))
    }
}
