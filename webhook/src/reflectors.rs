//! Fills the [`Caches`] from the API server with kube-runtime reflectors (list + watch, with
//! backoff), one task per resource.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use volops_shared::DatabaseKind;

use crate::caches::{ApplyEvent, PvcWriter, Writers};
use crate::views::Views;

/// Drops what no rule reads but every object carries, to keep the caches small.
fn slim<K: Resource>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    if let Some(a) = obj.meta_mut().annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Drives one reflector stream until `stop`; watch errors are logged and retried by backoff.
fn drive<S, T>(set: &mut JoinSet<()>, stream: S, name: &'static str, stop: CancellationToken)
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Send + 'static,
    T: Send,
{
    set.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                ev = stream.next() => match ev {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => tracing::warn!(cache = name, error = %e, "watch failed; retrying with backoff"),
                    None => return,
                },
            }
        }
    });
}

/// Starts reflectors into one set, each running until `stop`.
struct Spawner<'a> {
    set: JoinSet<()>,
    client: &'a Client,
    stop: &'a CancellationToken,
}

impl Spawner<'_> {
    /// One reflector: `feed` sees every (slimmed) event before the store does.
    fn typed<K>(
        &mut self,
        writer: Writer<K>,
        name: &'static str,
        feed: impl Fn(&watcher::Event<K>) + Send + 'static,
    ) where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone + Default + Send + Sync,
    {
        let api = Api::<K>::all(self.client.clone());
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(slim)
            .map_ok(move |event| {
                feed(&event);
                event
            });
        drive(&mut self.set, reflector(writer, events), name, self.stop.clone());
    }

    /// [`Spawner::typed`] for the objects of `ar`.
    fn dynamic(
        &mut self,
        ar: ApiResource,
        writer: Writer<DynamicObject>,
        name: &'static str,
        feed: impl Fn(&watcher::Event<DynamicObject>) + Send + 'static,
    ) {
        let api = Api::<DynamicObject>::all_with(self.client.clone(), &ar);
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(slim)
            .map_ok(move |event| {
                feed(&event);
                event
            });
        drive(&mut self.set, reflector(writer, events), name, self.stop.clone());
    }

    /// PVCs go to the view index alone (see [`PvcWriter`]): views copy only what the rules read.
    fn pvcs(&mut self, mut writer: PvcWriter) {
        let api = Api::<PersistentVolumeClaim>::all(self.client.clone());
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .map_ok(move |event| writer.apply_event(&event));
        drive(&mut self.set, events, "persistentvolumeclaims", self.stop.clone());
    }
}

/// Starts one reflector per cache, each feeding its view index in `views`; they run until `stop`.
pub fn spawn_all(client: &Client, w: Writers, views: Views, stop: &CancellationToken) -> JoinSet<()> {
    let mut spawn = Spawner {
        set: JoinSet::new(),
        client,
        stop,
    };
    for (kind, db_writer, ops_writer) in [
        (DatabaseKind::Redis, w.redis, w.redis_ops),
        (DatabaseKind::ZooKeeper, w.zookeeper, w.zookeeper_ops),
    ] {
        let (v1, v2) = (views.clone(), views.clone());
        let (databases, ops) = (kind.database_resource(), kind.ops_resource());
        spawn.dynamic(databases, db_writer, database_cache(kind), move |e| {
            v1.apply_database(kind, e)
        });
        spawn.dynamic(ops, ops_writer, ops_cache(kind), move |e| v2.apply_ops(kind, e));
    }
    spawn.pvcs(w.pvcs);
    let v = views.clone();
    spawn.typed(w.classes, "storageclasses", move |e| v.apply_class(e));
    let v = views.clone();
    spawn.typed(w.quotas, "resourcequotas", move |e| v.apply_quota(e));
    let v = views.clone();
    spawn.typed(w.namespaces, "namespaces", move |e| v.apply_namespace(e));
    spawn.typed(w.policies, "volumeexpansionpolicies", move |e| {
        views.apply_policy(e)
    });
    spawn.set
}

fn database_cache(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Redis => "redis",
        DatabaseKind::ZooKeeper => "zookeeper",
    }
}

fn ops_cache(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Redis => "redisopsrequests",
        DatabaseKind::ZooKeeper => "zookeeperopsrequests",
    }
}
