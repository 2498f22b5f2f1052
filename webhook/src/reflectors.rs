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

use crate::caches::{Writers, database_resource, ops_resource};
use crate::views::{self, Views};

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

/// PVCs are most of what the webhook caches (thousands of them): keep only what
/// [`volops_shared::facts::PvcView`] reads (name, namespace, labels, class, requested size,
/// phase, capacity, allocated size and resize state).
fn slim_pvc(pvc: &mut PersistentVolumeClaim) {
    slim(pvc);
    let meta = &mut pvc.metadata;
    meta.annotations = None;
    meta.finalizers = None;
    meta.owner_references = None;
    meta.generation = None;
    if let Some(spec) = pvc.spec.as_mut() {
        spec.access_modes = None;
        spec.data_source = None;
        spec.data_source_ref = None;
        spec.selector = None;
        spec.volume_attributes_class_name = None;
        spec.volume_mode = None;
        spec.volume_name = None;
        if let Some(r) = spec.resources.as_mut() {
            r.limits = None;
        }
    }
    if let Some(status) = pvc.status.as_mut() {
        status.access_modes = None;
        status.current_volume_attributes_class_name = None;
        status.modify_volume_status = None;
        if let Some(conditions) = status.conditions.as_mut() {
            // The rules look only at the types of conditions that are True.
            conditions.retain(|c| c.status == "True");
            for c in conditions {
                c.message = None;
                c.reason = None;
                c.last_probe_time = None;
                c.last_transition_time = None;
            }
        }
    }
}

/// One reflector: `feed` sees every (slimmed) event before the store does.
fn spawn_typed<K>(
    set: &mut JoinSet<()>,
    client: &Client,
    writer: Writer<K>,
    name: &'static str,
    slimmer: fn(&mut K),
    feed: impl Fn(&watcher::Event<K>) + Send + 'static,
    stop: CancellationToken,
) where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default + Send + Sync,
{
    let api = Api::<K>::all(client.clone());
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(slimmer)
        .map_ok(move |event| {
            feed(&event);
            event
        });
    drive(set, reflector(writer, events), name, stop);
}

/// PVCs feed the namespace index with their views, then the store keeps a bare copy.
fn spawn_pvcs(
    set: &mut JoinSet<()>,
    client: &Client,
    writer: Writer<PersistentVolumeClaim>,
    views: Views,
    stop: CancellationToken,
) {
    let api = Api::<PersistentVolumeClaim>::all(client.clone());
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .map_ok(move |event| {
            let event = event.modify(slim_pvc);
            views.apply_pvc(&event);
            event.modify(views::bare)
        });
    drive(set, reflector(writer, events), "persistentvolumeclaims", stop);
}

fn spawn_dynamic(
    set: &mut JoinSet<()>,
    client: &Client,
    ar: ApiResource,
    writer: Writer<DynamicObject>,
    name: &'static str,
    feed: impl Fn(&watcher::Event<DynamicObject>) + Send + 'static,
    stop: CancellationToken,
) {
    let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(slim)
        .map_ok(move |event| {
            feed(&event);
            event
        });
    drive(set, reflector(writer, events), name, stop);
}

/// Starts one reflector per cache, each feeding its view index in `views`; they run until `stop`.
pub fn spawn_all(client: &Client, w: Writers, views: Views, stop: &CancellationToken) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let s = || stop.clone();
    for (kind, db_writer, ops_writer) in [
        (DatabaseKind::Redis, w.redis, w.redis_ops),
        (DatabaseKind::ZooKeeper, w.zookeeper, w.zookeeper_ops),
    ] {
        let (v1, v2) = (views.clone(), views.clone());
        spawn_dynamic(
            &mut set,
            client,
            database_resource(kind),
            db_writer,
            database_cache(kind),
            move |e| v1.apply_database(kind, e),
            s(),
        );
        spawn_dynamic(
            &mut set,
            client,
            ops_resource(kind),
            ops_writer,
            ops_cache(kind),
            move |e| v2.apply_ops(kind, e),
            s(),
        );
    }
    spawn_pvcs(&mut set, client, w.pvcs, views.clone(), s());
    let v = views.clone();
    spawn_typed(
        &mut set,
        client,
        w.classes,
        "storageclasses",
        slim,
        move |e| v.apply_class(e),
        s(),
    );
    let v = views.clone();
    spawn_typed(
        &mut set,
        client,
        w.quotas,
        "resourcequotas",
        slim,
        move |e| v.apply_quota(e),
        s(),
    );
    let v = views.clone();
    spawn_typed(
        &mut set,
        client,
        w.namespaces,
        "namespaces",
        slim,
        move |e| v.apply_namespace(e),
        s(),
    );
    let v = views;
    spawn_typed(
        &mut set,
        client,
        w.policies,
        "volumeexpansionpolicies",
        slim,
        move |e| v.apply_policy(e),
        s(),
    );
    set
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

#[cfg(test)]
mod tests {
    use super::*;
    use volops_shared::facts::PvcView;

    #[test]
    fn slimming_a_pvc_keeps_everything_the_rules_read() {
        let mut pvc: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data-rd-0", "namespace": "demo",
                         "labels": {"app.kubernetes.io/instance": "rd"},
                         "annotations": {"pv.kubernetes.io/bind-completed": "yes"},
                         "finalizers": ["kubernetes.io/pvc-protection"],
                         "managedFields": [{"manager": "kcm"}]},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                     "resources": {"requests": {"storage": "2Gi"}}, "volumeName": "pv-1"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"},
                       "allocatedResources": {"storage": "2Gi"},
                       "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
                       "conditions": [{"type": "Resizing", "status": "True", "message": "m"},
                                      {"type": "FileSystemResizePending", "status": "False"}]}
        }))
        .unwrap();
        let before = PvcView::from_pvc(&pvc);
        slim_pvc(&mut pvc);
        assert_eq!(PvcView::from_pvc(&pvc), before);
        assert_eq!(before.true_conditions, vec!["Resizing".to_owned()]);
        assert!(pvc.metadata.annotations.is_none() && pvc.metadata.finalizers.is_none());
        assert!(pvc.metadata.managed_fields.is_none_or(|m| m.is_empty()));
        assert!(pvc.spec.as_ref().is_some_and(|s| s.volume_name.is_none()));
    }
}
