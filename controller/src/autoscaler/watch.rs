//! The autoscalers of each kind, from a watch: their JSON as the API server stores it (the
//! decision reads it through `autoscaler_view`, so a field no type knows is never lost).

use std::future::Future;

use futures::{FutureExt, StreamExt};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, Store, reflector},
        watcher,
    },
};
use volops_shared::{DatabaseKind, api::autoscaler::autoscaler_kind};

/// The autoscalers' group and version (both kinds).
const GROUP: &str = "autoscaling.kubedb.com";
const VERSION: &str = "v1alpha1";

/// The API resource of the autoscaler of a database kind.
pub fn autoscaler_resource(kind: DatabaseKind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(GROUP, VERSION, autoscaler_kind(kind));
    let plural = match kind {
        DatabaseKind::Redis => "redisautoscalers",
        DatabaseKind::ZooKeeper => "zookeeperautoscalers",
    };
    ApiResource::from_gvk_with_plural(&gvk, plural)
}

/// One kind's autoscalers; None where the cluster does not serve its CRD.
#[derive(Clone)]
pub struct AutoscalerStores {
    pub kinds: Vec<(DatabaseKind, Store<DynamicObject>)>,
}

impl AutoscalerStores {
    /// The kind's autoscalers, None until its watch's first list is in.
    pub fn autoscalers(&self, kind: DatabaseKind) -> Option<Vec<std::sync::Arc<DynamicObject>>> {
        let (_, store) = self.kinds.iter().find(|(k, _)| *k == kind)?;
        crate::caches::synced(store).then(|| store.state())
    }
}

/// A watch of one kind's autoscalers and the future that fills its store.
fn watch(
    client: &Client,
    kind: DatabaseKind,
) -> (Store<DynamicObject>, impl Future<Output = ()> + Send + 'static) {
    let ar = autoscaler_resource(kind);
    let writer = reflector::store::Writer::new(ar.clone());
    let store = writer.as_reader();
    let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
    let events =
        reflector(writer, watcher(api, watcher::Config::default()).default_backoff()).applied_objects();
    let drive = async move {
        let mut events = std::pin::pin!(events);
        while let Some(ev) = events.next().await {
            if let Err(e) = ev {
                tracing::warn!(kind = autoscaler_kind(kind), error = %e, "autoscaler watch failed; retrying");
            }
        }
    };
    (store, drive)
}

/// Starts the watches of the autoscaler kinds the cluster serves (checked once, as the
/// policies' CRD is: a cluster that installs it later restarts the controller).
pub async fn start(client: &Client) -> (AutoscalerStores, impl Future<Output = ()> + Send + 'static) {
    let mut kinds = Vec::new();
    let mut drives = Vec::new();
    for kind in DatabaseKind::ALL {
        let api = Api::<DynamicObject>::all_with(client.clone(), &autoscaler_resource(kind));
        if api.list(&ListParams::default().limit(1)).await.is_err() {
            tracing::info!(
                kind = autoscaler_kind(kind),
                "autoscaler CRD not served: no storage autoscaling"
            );
            continue;
        }
        let (store, drive) = watch(client, kind);
        kinds.push((kind, store));
        drives.push(drive.boxed());
    }
    let run = async move {
        futures::future::join_all(drives).await;
    };
    (AutoscalerStores { kinds }, run)
}
