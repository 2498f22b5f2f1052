//! Fills the [`Caches`] from the API server with kube-runtime reflectors (list + watch, with
//! backoff), one task per resource.

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use volops_shared::DatabaseKind;

use crate::caches::{Writers, database_resource, ops_resource};

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

fn spawn_typed<K>(
    set: &mut JoinSet<()>,
    client: &Client,
    writer: Writer<K>,
    name: &'static str,
    stop: CancellationToken,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default + Send + Sync,
{
    let api = Api::<K>::all(client.clone());
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(slim);
    drive(set, reflector(writer, events), name, stop);
}

fn spawn_dynamic(
    set: &mut JoinSet<()>,
    client: &Client,
    ar: ApiResource,
    writer: Writer<DynamicObject>,
    name: &'static str,
    stop: CancellationToken,
) {
    let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(slim);
    drive(set, reflector(writer, events), name, stop);
}

/// Starts one reflector per cache; they run until `stop` fires.
pub fn spawn_all(client: &Client, w: Writers, stop: &CancellationToken) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let s = || stop.clone();
    spawn_dynamic(
        &mut set,
        client,
        database_resource(DatabaseKind::Redis),
        w.redis,
        "redis",
        s(),
    );
    spawn_dynamic(
        &mut set,
        client,
        database_resource(DatabaseKind::ZooKeeper),
        w.zookeeper,
        "zookeeper",
        s(),
    );
    spawn_dynamic(
        &mut set,
        client,
        ops_resource(DatabaseKind::Redis),
        w.redis_ops,
        "redisopsrequests",
        s(),
    );
    spawn_dynamic(
        &mut set,
        client,
        ops_resource(DatabaseKind::ZooKeeper),
        w.zookeeper_ops,
        "zookeeperopsrequests",
        s(),
    );
    spawn_typed(&mut set, client, w.pvcs, "persistentvolumeclaims", s());
    spawn_typed(&mut set, client, w.classes, "storageclasses", s());
    spawn_typed(&mut set, client, w.quotas, "resourcequotas", s());
    spawn_typed(&mut set, client, w.namespaces, "namespaces", s());
    spawn_typed(&mut set, client, w.policies, "volumeexpansionpolicies", s());
    set
}
