//! Simulated cluster controllers of the volops sandbox.
//!
//! Each controller is an independent loop that reads and writes only through `kube::Client`
//! (shared watch-backed stores + work queues, see [`runtime`]), like the real ones:
//! StatefulSet/PetSet controller, PV provisioner, volume resizer, scheduler, kubelets (one per
//! registered node, with their stats: [`stats`]), garbage collector, ResourceQuota status and a
//! KubeDB-like provisioner for Redis and ZooKeeper.
//!
//! # Workload layout of the provisioner
//!
//! As current KubeDB, every database runs on PetSets (`apps.k8s.appscode.com/v1`): Redis
//! Standalone and Sentinel mode on one PetSet `<db>` (claims `data-<db>-<i>`), Redis Cluster on
//! one PetSet per shard `<db>-shard<i>` (claims `data-<db>-shard<i>-<j>`, selector label
//! `redis.kubedb.com/shard`), ZooKeeper on `<db>` (claims `<db>-data-<db>-<i>`).
//! [`ClusterConfig::redis_workload`] = [`RedisWorkload::StatefulSet`] puts Redis on StatefulSets
//! under the same names, the layout of older KubeDB releases. A `RedisSentinel` object itself is
//! not provisioned (no sentinel pods).
//!
//! # StorageClass parameters understood by the resizer
//!
//! - `sandbox.volops.dev/resize-mode`: `online` (default), `offline` or `fail`
//!   (see [`storage::resize`]).
//! - `sandbox.volops.dev/resize-delay-ms`: delay of each resize step in milliseconds
//!   (default [`ClusterConfig::resize_delay`]).

pub mod config;
pub mod crd;
pub mod error;
pub mod events;
pub mod gc;
pub mod kubedb;
pub mod kubelet;
pub mod nodes;
pub mod pause;
pub mod quantity;
pub mod quota;
pub mod runtime;
pub mod scheduler;
pub mod stats;
pub mod storage;
pub mod util;
pub mod workload;

pub use config::{ClusterConfig, RedisWorkload};
pub use pause::PauseSwitch;
pub use stats::fs::Fill;
pub use stats::{KubeletError, Kubelets, VolumeError, VolumeUsage};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, ResourceQuota, Service};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ApiResource, DynamicObject};
use runtime::Informer;
use tokio::task::JoinSet;

/// Handle to the running simulated controllers.
#[derive(Debug)]
pub struct ClusterHandle {
    pause: PauseSwitch,
    tasks: JoinSet<()>,
    kubelets: Kubelets,
}

impl ClusterHandle {
    /// Pauses (true) or resumes (false) every simulated controller. Paused controllers still
    /// watch, but write nothing until resumed.
    pub fn pause_all(&self, paused: bool) {
        self.pause.set(paused);
    }

    /// Whether the controllers are paused.
    pub fn is_paused(&self) -> bool {
        self.pause.is_paused()
    }

    /// The nodes' kubelets: their stats, and the control that fills volumes.
    pub fn kubelets(&self) -> &Kubelets {
        &self.kubelets
    }

    /// Fills the volume of claim `namespace/claim` (see [`Kubelets::fill_volume`]).
    pub async fn fill_volume(
        &self,
        namespace: &str,
        claim: &str,
        fill: Fill,
    ) -> Result<VolumeUsage, VolumeError> {
        self.kubelets.fill_volume(namespace, claim, fill).await
    }

    /// Stops every controller and waits for them to end.
    pub async fn shutdown(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Registers the PetSet CRD and starts every simulated controller against the API behind
/// `client`.
pub async fn start(client: kube::Client, config: ClusterConfig) -> ClusterHandle {
    let pause = PauseSwitch::default();
    let mut tasks = JoinSet::new();
    if let Err(e) = crd::register_petset_crd(&client).await {
        tracing::warn!(error = %e, "PetSet CRD not registered; PetSets will not work");
    }
    let all = |c: &kube::Client| c.clone();
    let nodes = nodes::plan(&config.nodes);
    if let Err(e) = nodes::register(&client, &nodes).await {
        tracing::warn!(error = %e, "nodes not registered");
    }
    let mut pods = Informer::new(Api::<Pod>::all(all(&client)), ());
    let mut pvcs = Informer::new(Api::<PersistentVolumeClaim>::all(all(&client)), ());
    let mut pvs = Informer::new(Api::<PersistentVolume>::all(all(&client)), ());
    let mut classes = Informer::new(Api::<StorageClass>::all(all(&client)), ());
    let mut quotas = Informer::new(Api::<ResourceQuota>::all(all(&client)), ());
    let mut services = Informer::new(Api::<Service>::all(all(&client)), ());
    let sts_ar = util::statefulset_ar();
    let pet_ar = util::petset_ar();
    let mut sts = Informer::new(
        Api::<DynamicObject>::all_with(all(&client), &sts_ar),
        sts_ar.clone(),
    );
    let mut pets = Informer::new(
        Api::<DynamicObject>::all_with(all(&client), &pet_ar),
        pet_ar.clone(),
    );

    workload::start(
        all(&client),
        sts_ar.clone(),
        &mut sts,
        &mut pods,
        pause.clone(),
        &mut tasks,
    );
    workload::start(
        all(&client),
        pet_ar.clone(),
        &mut pets,
        &mut pods,
        pause.clone(),
        &mut tasks,
    );
    scheduler::start(
        all(&client),
        config.nodes.clone(),
        &mut pods,
        pause.clone(),
        &mut tasks,
    );
    kubelet::start(
        all(&client),
        &config,
        &nodes,
        &mut pods,
        pause.clone(),
        &mut tasks,
    );
    let kubelets = Kubelets::new(
        all(&client),
        nodes,
        pods.store(),
        pvcs.store(),
        config.volume_stats_period,
    );
    storage::provisioner::start(
        all(&client),
        &config,
        &mut pvcs,
        &mut pvs,
        &mut classes,
        pause.clone(),
        &mut tasks,
    );
    storage::resizer::start(
        all(&client),
        &config,
        &mut pvcs,
        &mut pods,
        &classes,
        pause.clone(),
        &mut tasks,
    );
    quota::start(all(&client), &mut quotas, &mut pvcs, pause.clone(), &mut tasks);

    let gc = gc::Collector::start(all(&client), pause.clone(), &mut tasks);
    pods.on(gc.handler::<Pod>(ApiResource::erase::<Pod>(&())));
    pvcs.on(gc.handler::<PersistentVolumeClaim>(ApiResource::erase::<PersistentVolumeClaim>(&())));
    services.on(gc.handler::<Service>(ApiResource::erase::<Service>(&())));
    sts.on(gc.handler::<DynamicObject>(sts_ar));
    pets.on(gc.handler::<DynamicObject>(pet_ar));

    if config.kubedb_provisioner {
        // Current KubeDB runs every database on PetSets; older releases ran Redis on
        // StatefulSets (docs/KUBEDB.md).
        let (redis_ar, redis_sets) = match config.redis_workload {
            RedisWorkload::PetSet => (util::petset_ar(), &mut pets),
            RedisWorkload::StatefulSet => (util::statefulset_ar(), &mut sts),
        };
        let redis = kubedb::prepare(kubedb::build::DbKind::Redis, redis_ar, redis_sets, &mut services);
        let zookeeper = kubedb::prepare(
            kubedb::build::DbKind::ZooKeeper,
            util::petset_ar(),
            &mut pets,
            &mut services,
        );
        kubedb::start(
            all(&client),
            vec![redis, zookeeper],
            gc.clone(),
            pause.clone(),
            &mut tasks,
        );
    }

    pods.spawn(&mut tasks);
    pvcs.spawn(&mut tasks);
    pvs.spawn(&mut tasks);
    classes.spawn(&mut tasks);
    quotas.spawn(&mut tasks);
    services.spawn(&mut tasks);
    sts.spawn(&mut tasks);
    pets.spawn(&mut tasks);
    ClusterHandle {
        pause,
        tasks,
        kubelets,
    }
}
