//! volops-controller: carries out VolumeExpansion RedisOpsRequests and ZooKeeperOpsRequests
//! (docs/ARCHITECTURE.md). Entry point for the binary and for in-process tests: [`run`].

pub mod autoscaler;
pub mod cache_report;
pub mod caches;
pub mod claim;
pub mod cluster_caches;
pub mod context;
pub mod controller;
pub mod decide;
pub mod error;
pub mod events;
pub mod forged;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod offline;
pub mod ops;
pub mod ownership;
pub mod probes;
pub mod pvc;
pub mod reconcile;
pub mod saved;
pub mod saved_store;
pub mod steps;
pub mod sweep;
pub mod workload_view;

use std::{
    future::Future,
    net::SocketAddr,
    num::NonZeroUsize,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

pub use error::{Error, Result};
use kube::Client;
pub use metrics::Metrics;
use tokio::sync::watch;
use volops_shared::api::{RedisOpsRequest, ZooKeeperOpsRequest};

/// How the database is paused (`--pause-handshake`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PauseHandshake {
    /// Ask with `Paused=Unknown` and wait for the KubeDB provisioner to set True.
    #[default]
    Kubedb,
    /// Set `Paused=True` directly (clusters without the KubeDB provisioner).
    SelfPause,
}

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub lease_name: String,
    pub namespace: String,
    /// Lease duration in seconds.
    pub duration: u64,
    /// Grace period in seconds.
    pub grace: u64,
}

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub pause_handshake: PauseHandshake,
    /// Only the holder of this lease runs the controllers.
    pub leader_election: Option<LeaderConfig>,
    pub probe_listen: Option<SocketAddr>,
    /// `/metrics` on its own listener; None (or the probe address) serves it with the probes.
    pub metrics_listen: Option<SocketAddr>,
    /// This instance's name (events, lease holder).
    pub identity: String,
    /// Online mode: at most this many PVCs of one request patched but not yet grown at a time
    /// (`None`: all at once; `Some(1)` is KubeDB's one-by-one).
    pub pvc_parallelism: Option<NonZeroUsize>,
    /// The controller's own namespace, where it keeps each request's saved state (one Secret
    /// per request; tenants cannot write there). `--state-namespace`, in a pod `POD_NAMESPACE`.
    pub state_namespace: String,
    /// How often saved states whose request is gone are looked for and cleaned up.
    pub sweep_interval: Duration,
    /// Who acts on VolumeExpansion requests; with `Kubedb` the controller leaves them all to
    /// KubeDB's ops-manager (controller/DESIGN-NOTES.md, "One owner per request").
    pub volume_expansion_owner: volops_shared::facts::VolumeExpansionOwner,
    /// The storage autoscaler's interval and usage source (`--autoscaler-interval`,
    /// `--usage-source`, `--prometheus-url`).
    pub autoscaler: autoscaler::AutoscalerConfig,
}

/// The chart's release namespace.
pub const DEFAULT_STATE_NAMESPACE: &str = "volops-system";

impl Default for Config {
    fn default() -> Self {
        Self {
            pause_handshake: PauseHandshake::default(),
            leader_election: None,
            probe_listen: None,
            metrics_listen: None,
            identity: format!("volops-controller-{}", std::process::id()),
            pvc_parallelism: None,
            state_namespace: DEFAULT_STATE_NAMESPACE.to_owned(),
            sweep_interval: Duration::from_secs(60),
            volume_expansion_owner: volops_shared::facts::VolumeExpansionOwner::Volops,
            autoscaler: autoscaler::AutoscalerConfig::default(),
        }
    }
}

/// Runs the controllers (behind leader election if configured) and the probe server until
/// `shutdown` resolves. Metrics go to a fresh registry.
pub async fn run(
    client: Client,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    run_with_metrics(client, config, Arc::new(Metrics::default()), shutdown).await
}

/// [`run`] with a caller's metrics (tests read `api_requests` from it).
pub async fn run_with_metrics(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let client = context::counting_client(client, metrics.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let ready = Arc::new(AtomicBool::new(false));
    let mut probe_task = None;
    if let Some(addr) = config.probe_listen {
        let state = probes::ProbeState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        };
        let (_, _, server) = probes::bind(addr, config.metrics_listen, state).await?;
        let mut rx = stop_rx.clone();
        probe_task = Some(tokio::spawn(async move {
            tokio::select! {
                r = server => r.map_err(|e| tracing::warn!(error = %e, "probe server stopped")).ok(),
                _ = rx.wait_for(|s| *s) => None,
            }
        }));
    }
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    let result = match &config.leader_election {
        None => {
            run_controllers(client, config.clone(), metrics, stopped(stop_rx)).await;
            Ok(())
        }
        Some(lc) => {
            let (c, cfg) = (client.clone(), config.clone());
            leader::run_as_leader(client, lc, &config.identity, stop_rx, move |stop| {
                run_controllers(c.clone(), cfg.clone(), metrics.clone(), stop)
            })
            .await
        }
    };
    if let Some(t) = probe_task {
        t.abort();
    }
    result
}

/// A future that resolves when the flag turns true (or its sender is gone).
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Both controllers until `stop`: every watch is started first, then the context is built
/// once from them (docs/ARCHITECTURE.md).
async fn run_controllers(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (tx, rx) = watch::channel(false);
    metrics.leader.set(1);
    let reporting = metrics.clone();
    let (cluster, fill) = cluster_caches::ClusterCaches::start(&client).await;
    let redis = controller::prepare::<RedisOpsRequest>(&client).await;
    let zookeeper = controller::prepare::<ZooKeeperOpsRequest>(&client).await;
    let ctx = Arc::new(context::Ctx::new(
        client,
        config,
        metrics,
        cluster,
        [redis.watches, zookeeper.watches],
    ));
    let cluster_stop = stopped(rx.clone());
    // A task of its own: polled inside the join below, its TLS handshakes ran on top of every
    // controller's frames and could overflow a worker's stack in debug builds.
    let caches = tokio::spawn(async move {
        tokio::select! {
            () = fill => {}
            () = cluster_stop => {}
        }
    });
    let redis = controller::run(redis.controller, redis.store, ctx.clone(), stopped(rx.clone()));
    let zookeeper = controller::run(
        zookeeper.controller,
        zookeeper.store,
        ctx.clone(),
        stopped(rx.clone()),
    );
    let report = cache_report::run(ctx.clone(), stopped(rx.clone()));
    // A task of its own, as the caches' (its watches and kubelet reads make TLS handshakes).
    let autoscaling = tokio::spawn(autoscaler::run(ctx.clone(), stopped(rx.clone())));
    let sweep = sweep::run(ctx, stopped(rx));
    let trigger = async move {
        stop.await;
        let _ = tx.send(true);
    };
    let (.., caches, autoscaling) =
        futures::join!(redis, zookeeper, trigger, sweep, report, caches, autoscaling);
    if let Err(e) = caches {
        tracing::warn!(error = %e, "the cluster caches' task ended abnormally");
    }
    if let Err(e) = autoscaling {
        tracing::warn!(error = %e, "the autoscaler's task ended abnormally");
    }
    // A replica that no longer acts reports nothing in flight (docs/RUNBOOK.md).
    reporting.leader.set(0);
    reporting.progress.clear();
}
