//! Simulated cluster controllers of the volops sandbox.
//!
//! Each controller is an independent loop that reads and writes only through `kube::Client`
//! (shared watch-backed stores + work queues, see [`runtime`]), like the real ones:
//! StatefulSet/PetSet controller, PV provisioner, volume resizer, kubelet, garbage collector,
//! ResourceQuota status and a KubeDB-like provisioner for Redis and ZooKeeper.
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
pub mod kubelet;
pub mod pause;
pub mod quantity;
pub mod runtime;
pub mod util;
pub mod workload;

pub use config::ClusterConfig;
pub use pause::PauseSwitch;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use runtime::Informer;
use tokio::task::JoinSet;

/// Handle to the running simulated controllers.
#[derive(Debug)]
pub struct ClusterHandle {
    pause: PauseSwitch,
    tasks: JoinSet<()>,
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
    let mut pods = Informer::new(Api::<Pod>::all(client.clone()), ());
    let sts_ar = util::statefulset_ar();
    let pet_ar = util::petset_ar();
    let mut sts = Informer::new(
        Api::<DynamicObject>::all_with(client.clone(), &sts_ar),
        sts_ar.clone(),
    );
    let mut pets = Informer::new(
        Api::<DynamicObject>::all_with(client.clone(), &pet_ar),
        pet_ar.clone(),
    );

    workload::start(
        client.clone(),
        sts_ar,
        &mut sts,
        &mut pods,
        pause.clone(),
        &mut tasks,
    );
    workload::start(
        client.clone(),
        pet_ar,
        &mut pets,
        &mut pods,
        pause.clone(),
        &mut tasks,
    );
    kubelet::start(client.clone(), &config, &mut pods, pause.clone(), &mut tasks);

    pods.spawn(&mut tasks);
    sts.spawn(&mut tasks);
    pets.spawn(&mut tasks);
    ClusterHandle { pause, tasks }
}
