//! Fills the [`Caches`](crate::Caches) from the API server with kube-runtime watchers (list +
//! watch, with backoff), one task per resource, each event turned into its view at once.

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use volops_shared::DatabaseKind;

use crate::caches::{ApplyEvent, ViewWriter, Writers};

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

/// Starts watches into one set, each running until `stop`.
struct Spawner<'a> {
    set: JoinSet<()>,
    stop: &'a CancellationToken,
}

impl Spawner<'_> {
    /// One watch (list, then watch, with backoff) whose every event goes to `writer`.
    fn watch<K>(&mut self, api: Api<K>, mut writer: ViewWriter<K>, name: &'static str)
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .map_ok(move |event| writer.apply_event(&event));
        drive(&mut self.set, events, name, self.stop.clone());
    }
}

/// Starts one watch per cache, each feeding its view index; they run until `stop`.
pub fn spawn_all(client: &Client, w: Writers, stop: &CancellationToken) -> JoinSet<()> {
    let mut spawn = Spawner {
        set: JoinSet::new(),
        stop,
    };
    for (kind, databases, ops) in [
        (DatabaseKind::Redis, w.redis, w.redis_ops),
        (DatabaseKind::ZooKeeper, w.zookeeper, w.zookeeper_ops),
    ] {
        let api = |ar| Api::<DynamicObject>::all_with(client.clone(), &ar);
        spawn.watch(api(kind.database_resource()), databases, database_cache(kind));
        spawn.watch(api(kind.ops_resource()), ops, ops_cache(kind));
    }
    spawn.watch(Api::all(client.clone()), w.pvcs, "persistentvolumeclaims");
    spawn.watch(Api::all(client.clone()), w.classes, "storageclasses");
    spawn.watch(Api::all(client.clone()), w.quotas, "resourcequotas");
    spawn.watch(Api::all(client.clone()), w.namespaces, "namespaces");
    spawn.watch(Api::all(client.clone()), w.policies, "volumeexpansionpolicies");
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
