//! Tunables of the simulated cluster.

use std::time::Duration;

/// What the simulated cluster does and how fast.
///
/// Every delay is a lower bound: an action happens on the first event or requeue after it.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Time from a pod becoming `Running` to it becoming `Ready`.
    pub pod_ready_delay: Duration,
    /// Upper bound for a pod's graceful termination: the kubelet waits
    /// `min(terminationGracePeriodSeconds, pod_grace_cap)` before removing a deleted pod.
    pub pod_grace_cap: Duration,
    /// Delay of each resize step (controller resize, node resize) when the StorageClass has no
    /// `sandbox.volops.dev/resize-delay-ms` parameter.
    pub resize_delay: Duration,
    /// Delay between a PVC appearing and its PV being provisioned and bound.
    pub pv_provision_delay: Duration,
    /// Seed of the RNG used for anything random (pod IPs, volume handles).
    pub seed: u64,
    /// The nodes the cluster registers (`v1 Node`, one simulated kubelet each); the scheduler
    /// binds every pod to one of them (the one running the fewest pods).
    pub nodes: Vec<String>,
    /// How long a volume's stats stay cached by its kubelet before they are measured again
    /// (kubelet's `--volume-stats-agg-period`, 1m on a real node); zero measures on every read.
    pub volume_stats_period: Duration,
    /// Run the KubeDB-like provisioner (it still waits for the Redis/ZooKeeper CRDs).
    pub kubedb_provisioner: bool,
    /// The workload kind the provisioner runs Redis on (ZooKeeper is always on PetSets).
    pub redis_workload: RedisWorkload,
}

/// The workload kind of the provisioner's Redis databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisWorkload {
    /// `apps.k8s.appscode.com/v1 PetSet`, as current KubeDB runs every Redis mode.
    #[default]
    PetSet,
    /// `apps/v1 StatefulSet`, the layout of older KubeDB releases.
    StatefulSet,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            pod_ready_delay: Duration::from_millis(500),
            pod_grace_cap: Duration::from_millis(200),
            resize_delay: Duration::from_millis(200),
            pv_provision_delay: Duration::from_millis(50),
            seed: 42,
            nodes: vec!["sandbox-node-0".to_owned()],
            volume_stats_period: Duration::ZERO,
            kubedb_provisioner: true,
            redis_workload: RedisWorkload::PetSet,
        }
    }
}

impl ClusterConfig {
    /// A configuration with tens-of-milliseconds delays, for tests.
    pub fn fast() -> Self {
        Self {
            pod_ready_delay: Duration::from_millis(20),
            pod_grace_cap: Duration::from_millis(20),
            resize_delay: Duration::from_millis(30),
            pv_provision_delay: Duration::from_millis(5),
            ..Self::default()
        }
    }

    /// This configuration with `count` nodes, `sandbox-node-0` .. `sandbox-node-<count-1>`.
    pub fn with_nodes(self, count: usize) -> Self {
        Self {
            nodes: (0..count.max(1)).map(|i| format!("sandbox-node-{i}")).collect(),
            ..self
        }
    }

    /// This configuration with Redis on `workload`.
    pub fn with_redis_workload(self, workload: RedisWorkload) -> Self {
        Self {
            redis_workload: workload,
            ..self
        }
    }
}
