//! The kube-runtime Controllers, one per ops-request kind, with watches that map a database's
//! PVCs, pods, workloads and the database itself back to its requests.

use std::{future::Future, sync::Arc};

use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DynamicObject, ListParams},
    core::{DeserializeGuard, PartialObjectMeta},
    runtime::{
        Controller, WatchStreamExt, controller,
        reflector::{self, ObjectRef, Store, reflector},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use volops_shared::{
    DatabaseKind, WorkloadKind,
    api::OpsRequestPhase,
    facts::PvcView,
    index::{Named, ViewIndex},
};

use crate::{
    caches::{CachedDatabase, KindCaches},
    context::{Ctx, KindWatches, RequestLister},
    ops::OpsRequest,
    reconcile::{error_policy, reconcile},
    workload_view::WorkloadView,
};

const INSTANCE: &str = "app.kubernetes.io/instance";

/// An ops request as the controller watches it: typed, or the error that kept it from being
/// read. One request the API server stores but our types cannot read (e.g. an int32 field past
/// its range: kube-apiserver does not enforce `format: int32`) then fails on its own instead
/// of stopping every list, and so every request of its kind (`reconcile::unreadable`).
pub type Watched<R> = DeserializeGuard<R>;

/// Requests in the store for database `db` in `ns` that are not final.
fn requests_of<R: OpsRequest>(
    store: &Store<Watched<R>>,
    ns: Option<String>,
    db: Option<&str>,
) -> Vec<ObjectRef<Watched<R>>> {
    let (Some(ns), Some(db)) = (ns, db) else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|w| {
            // Runs for every PVC, pod and workload event: compare in place, allocate nothing.
            w.0.as_ref().is_ok_and(|r| {
                r.meta().namespace.as_deref() == Some(ns.as_str())
                    && r.database() == db
                    && r.status()
                        .and_then(|s| s.phase)
                        .is_none_or(|p: OpsRequestPhase| !p.is_final())
            })
        })
        .map(|w| ObjectRef::from_obj(w.as_ref()))
        .collect()
}

/// Offshoots carry the database name in `app.kubernetes.io/instance` (the watches select only
/// the kind's offshoots, see [`DatabaseKind::offshoot_selector`]).
fn offshoot_requests<R: OpsRequest, O: Resource>(
    store: &Store<Watched<R>>,
    obj: &O,
) -> Vec<ObjectRef<Watched<R>>> {
    requests_of(
        store,
        obj.namespace(),
        obj.labels().get(INSTANCE).map(String::as_str),
    )
}

/// Whether the cluster serves the PetSet API (the CRD is optional).
async fn serves(client: &Client, kind: WorkloadKind) -> bool {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.resource());
    api.list(&ListParams::default().limit(1)).await.is_ok()
}

/// The requests of one database from the controller's store, as JSON; None until the
/// store's first list is in (the cache may then miss a request this one queues behind).
fn request_lister<R: OpsRequest>(store: Store<Watched<R>>) -> RequestLister {
    Arc::new(move |ns: &str, db: &str| {
        store.wait_until_ready().now_or_never()?.ok()?;
        Some(
            store
                .state()
                .iter()
                .filter_map(|w| w.0.as_ref().ok())
                .filter(|r| r.namespace().as_deref() == Some(ns) && r.database() == db)
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect(),
        )
    })
}

/// A watch of the offshoot workloads of `kind`, metadata only: its cache (a few fields of
/// each, see `workload_view`), and the workloads it sees change. The steps read a workload's
/// spec from the API server only when a request saves it; the cache answers whether one
/// exists, whose it is and whether it is going.
fn workload_cache(
    client: &Client,
    kind: WorkloadKind,
    config: watcher::Config,
) -> (
    ViewIndex<WorkloadView>,
    impl Stream<Item = Result<PartialObjectMeta<DynamicObject>, watcher::Error>> + Send + 'static,
) {
    let index = ViewIndex::namespaced();
    let api = Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), &kind.resource());
    let events = indexed(api, config, index.clone(), WorkloadView::from_meta);
    (index, events)
}

/// A watch of `api` whose every event also changes `index` (each object becomes its view):
/// the objects it sees change.
fn indexed<K, V>(
    api: Api<K>,
    config: watcher::Config,
    index: ViewIndex<V>,
    view: impl Fn(&K) -> V + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    V: Named + Clone + Send + Sync + 'static,
{
    watcher(api, config)
        .map_ok(move |event| {
            index.apply(&event, &view);
            event
        })
        .touched_objects()
}

/// The controller of one ops-request kind over its own store of the requests, kept without
/// their managedFields: nothing reads them, every write is a merge patch (which leaves them
/// as they are), and they are most of a request's size (docs/ARCHITECTURE.md, "What each
/// cache holds").
///
/// A request that changes or goes also wakes the other requests of its database (the queue),
/// from the same watch: a second watch of every request would list them all again.
fn requests_controller<R: OpsRequest>(client: &Client) -> (Controller<Watched<R>>, Store<Watched<R>>) {
    let writer = reflector::store::Writer::<Watched<R>>::default();
    let store = writer.as_reader();
    let requests = watcher(Api::<Watched<R>>::all(client.clone()), watcher::Config::default())
        .modify(|r| r.meta_mut().managed_fields = None);
    let (wake, woken) = futures::channel::mpsc::unbounded();
    let s = store.clone();
    let touched = reflector(writer, requests)
        .touched_objects()
        .inspect_ok(move |w| {
            for sibling in siblings(&s, w) {
                // Fails only once the controller is gone, when nothing is to be woken.
                let _ = wake.unbounded_send(sibling);
            }
        });
    let controller = Controller::for_stream(touched, store.clone()).reconcile_on(woken);
    (controller, store)
}

/// The other requests, not final, of the database of request `w`.
fn siblings<R: OpsRequest>(store: &Store<Watched<R>>, w: &Watched<R>) -> Vec<ObjectRef<Watched<R>>> {
    let Ok(r) = &w.0 else { return Vec::new() };
    requests_of(store, r.namespace(), Some(r.database()))
        .into_iter()
        .filter(|o| o.name != r.name_any())
        .collect()
}

/// One kind's controller with its watches started, before it runs.
pub struct Prepared<R: OpsRequest> {
    pub controller: Controller<Watched<R>>,
    pub store: Store<Watched<R>>,
    /// What the context keeps of these watches.
    pub watches: KindWatches,
}

/// Starts the watches of one ops-request kind: its requests, and its database's PVCs,
/// database objects, workloads and pods, each mapped back to the requests of that database.
pub async fn prepare<R: OpsRequest>(client: &Client) -> Prepared<R> {
    // Only this kind's offshoots: KubeDB puts its selector labels on every one of them.
    let offshoots = watcher::Config::default().labels(&R::KIND.offshoot_selector());
    let (controller, store) = requests_controller::<R>(client);
    let requests = request_lister(store.clone());
    // PVCs and databases feed caches (views) as well as triggers: a step that waits for them
    // reads the caches (see `caches`).
    let kind: DatabaseKind = R::KIND;
    let pvcs = ViewIndex::pvcs();
    let pvc_events = indexed(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        offshoots.clone(),
        pvcs.clone(),
        PvcView::from_pvc,
    );
    let ar = kind.database_resource();
    let databases = ViewIndex::namespaced();
    let db_events = indexed(
        Api::<DynamicObject>::all_with(client.clone(), &ar),
        watcher::Config::default(),
        databases.clone(),
        move |db: &DynamicObject| CachedDatabase::from_object(kind, db),
    );
    // Workloads feed caches as well: the orphan and recreate steps read them (the PetSet CRD
    // is optional, so its kind is watched only where served).
    let mut workloads = Vec::new();
    let mut workload_events = Vec::new();
    for wk in [WorkloadKind::StatefulSet, WorkloadKind::PetSet] {
        if wk == WorkloadKind::PetSet && !serves(client, wk).await {
            continue;
        }
        let (cache, events) = workload_cache(client, wk, offshoots.clone());
        workloads.push((wk, cache));
        workload_events.push((events, wk.resource()));
    }
    let s = store.clone();
    let mut controller = controller.watches_stream(pvc_events, move |o| offshoot_requests(&s, &o));
    let s = store.clone();
    controller = controller.watches_stream_with(
        db_events,
        move |db| requests_of(&s, db.namespace(), Some(db.name_any().as_str())),
        ar,
    );
    for (events, ar) in workload_events {
        let s = store.clone();
        controller = controller.watches_stream_with(events, move |o| offshoot_requests(&s, &o), ar);
    }
    controller = wake_on_pods(controller, &store, client, offshoots);
    let caches = KindCaches {
        kind,
        pvcs,
        databases,
        workloads,
    };
    Prepared {
        controller,
        store,
        watches: KindWatches { caches, requests },
    }
}

/// Pods of the kind's offshoots wake their database's requests.
fn wake_on_pods<R: OpsRequest>(
    controller: Controller<Watched<R>>,
    store: &Store<Watched<R>>,
    client: &Client,
    offshoots: watcher::Config,
) -> Controller<Watched<R>> {
    let s = store.clone();
    // Only their labels are read: a metadata watch (pods are the cluster's most numerous
    // offshoots, and their specs the largest).
    let pods = Api::<PartialObjectMeta<Pod>>::all(client.clone());
    controller.watches(pods, offshoots, move |o| offshoot_requests(&s, &o))
}

/// Reconciles of one kind in flight at once. Each holds what it read (a namespace's PVCs for
/// the quota rule, the request, the database) and an HTTP connection's buffers; unbounded, a
/// start with 834 Pending requests held 70 MiB of response buffers at once (docs/PERFORMANCE.md,
/// "Large clusters"). A reconcile only reads, writes and returns (waits are requeues), so a
/// few dozen keep the API server as busy as hundreds.
const RECONCILES_AT_ONCE: u16 = 16;

/// Runs a prepared controller until `shutdown` resolves.
pub async fn run<R: OpsRequest>(
    controller: Controller<Watched<R>>,
    store: Store<Watched<R>>,
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.shared();
    let run = controller
        .with_config(controller::Config::default().concurrency(RECONCILES_AT_ONCE))
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile::<R>, error_policy::<R>, ctx)
        .for_each(|_| futures::future::ready(()));
    tokio::select! {
        () = run => {}
        () = never_synced(shutdown, store) => {
            tracing::info!(kind = R::KIND.ops_kind(), "stopped before the first list of requests; nothing was running");
        }
    }
}

/// Resolves when `shutdown` comes before the store's first list. kube-runtime holds every
/// reconcile until that list is in, and a graceful shutdown stops driving the list: its run
/// would then never end. Nothing can be running in that state, so stopping at once is safe.
async fn never_synced<R: OpsRequest>(shutdown: impl Future<Output = ()>, store: Store<Watched<R>>) {
    shutdown.await;
    if store.wait_until_ready().now_or_never().is_some() {
        // Synced: the graceful path waits for the reconciles in flight.
        std::future::pending::<()>().await;
    }
}
