//! KubeDB-like provisioner for `redises.kubedb.com` (v1) and `zookeepers.kubedb.com`
//! (v1alpha2). It waits for their CRDs, then creates the workloads (PetSets, as current KubeDB;
//! Redis on StatefulSets when configured so) and Services as KubeDB names them, keeps
//! `status.phase`, and answers the pause handshake (docs/KUBEDB.md): `Paused`
//! Unknown becomes True; while True nothing of the DB is touched; once the condition is removed
//! missing workloads are recreated from the DB's current spec.

pub mod build;

use crate::error::{Context, Error, ignore_codes};
use crate::gc::Collector;
use crate::pause::PauseSwitch;
use crate::runtime::{Change, Informer, Key, Queue, spawn_workers};
use crate::util::{controller_of, now_string};
use build::{DbKind, Observed, paused_status};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Concurrent provisioner reconciles: a pause of many databases at once is acknowledged
/// without a queue in front of it (volops-bench controller pauses 200 at once).
const PROVISIONER_WORKERS: usize = 16;

/// Per-kind wiring made before the informers start (so no event is missed).
pub struct Pending {
    kind: DbKind,
    workload: ApiResource,
    queue: Queue,
    sets: Store<DynamicObject>,
    services: Store<Service>,
}

/// Registers the provisioner's triggers on the workload and Service informers.
pub fn prepare(
    kind: DbKind,
    workload: ApiResource,
    sets: &mut Informer<DynamicObject>,
    services: &mut Informer<Service>,
) -> Pending {
    let queue = Queue::default();
    let db_kind = kind.ar().kind;
    let trigger = |q: Queue, db_kind: String| {
        move |ns: Option<String>,
              refs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>| {
            if let Some(r) = controller_of(refs)
                && r.kind == db_kind
            {
                q.add(Key::new(ns.as_deref().unwrap_or(""), &r.name));
            }
        }
    };
    let t = trigger(queue.clone(), db_kind.clone());
    sets.on(move |c| {
        let (Change::Applied(o) | Change::Deleted(o)) = c;
        t(o.namespace(), o.metadata.owner_references.as_ref());
    });
    let t = trigger(queue.clone(), db_kind);
    services.on(move |c| {
        if let Change::Deleted(o) = c {
            t(o.namespace(), o.metadata.owner_references.as_ref());
        }
    });
    Pending {
        kind,
        workload,
        queue,
        sets: sets.store(),
        services: services.store(),
    }
}

struct Ctx {
    client: kube::Client,
    kind: DbKind,
    /// The workload kind this database kind runs on.
    workload: ApiResource,
    dbs: Store<DynamicObject>,
    sets: Store<DynamicObject>,
    services: Store<Service>,
}

/// Waits for the DB CRDs and starts each provisioner when its CRD is established.
pub fn start(
    client: kube::Client,
    pending: Vec<Pending>,
    gc: Collector,
    pause: PauseSwitch,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        let mut inner = JoinSet::new();
        let mut pending: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let mut stream = watcher(crds, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(ev) = stream.next().await {
            let Ok(crd) = ev else { continue };
            for slot in pending.iter_mut() {
                let Some(p) = slot.as_ref() else { continue };
                let ar = p.kind.ar();
                let served = crd.spec.group == ar.group
                    && crd.spec.names.plural == ar.plural
                    && crd.spec.versions.iter().any(|v| v.name == ar.version && v.served);
                if served && let Some(p) = slot.take() {
                    run(client.clone(), p, gc.clone(), pause.clone(), &mut inner);
                }
            }
        }
        // The CRD watch never ends on its own; keep the provisioners alive if it does.
        while inner.join_next().await.is_some() {}
    });
}

fn run(client: kube::Client, p: Pending, gc: Collector, pause: PauseSwitch, tasks: &mut JoinSet<()>) {
    let ar = p.kind.ar();
    let mut dbs = Informer::new(Api::<DynamicObject>::all_with(client.clone(), &ar), ar.clone());
    let q = p.queue.clone();
    dbs.on(move |c| {
        if let Change::Applied(o) = c {
            q.add(Key::of(o));
        }
    });
    dbs.on(gc.handler::<DynamicObject>(ar));
    let ctx = Arc::new(Ctx {
        client,
        kind: p.kind,
        workload: p.workload,
        dbs: dbs.store(),
        sets: p.sets,
        services: p.services,
    });
    dbs.spawn(tasks);
    spawn_workers(
        tasks,
        "kubedb-provisioner",
        p.queue,
        PROVISIONER_WORKERS,
        pause,
        move |key| {
            let ctx = ctx.clone();
            async move { reconcile(&ctx, &key).await }
        },
    );
}

fn malformed(what: &str, e: serde_json::Error) -> Error {
    Error::Malformed {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let ar = ctx.kind.ar();
    let Some(db) = ctx.dbs.get(&key.obj_ref(ar.clone())) else {
        return Ok(None);
    };
    if db.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let db_api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &key.ns, &ar);
    match paused_status(&db).as_deref() {
        Some("True") => return Ok(None),
        Some("Unknown") => {
            let conditions: Vec<Value> = db
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    if c.get("type").and_then(Value::as_str) == Some("Paused") {
                        c["status"] = json!("True");
                        c["lastTransitionTime"] = json!(now_string());
                    }
                    c
                })
                .collect();
            ignore_codes(
                db_api
                    .patch_status(
                        &key.name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"conditions": conditions}})),
                    )
                    .await,
                &[404],
            )
            .ctx(|| format!("acknowledging pause of {}", key.name))?;
            return Ok(None);
        }
        _ => {}
    }
    ensure_services(ctx, &db).await?;
    let wl_ar = &ctx.workload;
    let sets_api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &key.ns, wl_ar);
    let mut observed = Vec::new();
    for w in build::workloads(ctx.kind, wl_ar, &db) {
        let existing = ctx
            .sets
            .get(&ObjectRef::new_with(&w.name, wl_ar.clone()).within(&key.ns));
        match existing {
            None => {
                let obj: DynamicObject =
                    serde_json::from_value(w.object).map_err(|e| malformed("workload", e))?;
                ignore_codes(sets_api.create(&PostParams::default(), &obj).await, &[409])
                    .ctx(|| format!("creating {} {}", wl_ar.kind, w.name))?;
                observed.push(Observed {
                    exists: false,
                    desired: w.replicas,
                    ready: 0,
                });
            }
            Some(set) => {
                let replicas = set
                    .data
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                if replicas != w.replicas && set.metadata.deletion_timestamp.is_none() {
                    sets_api
                        .patch(
                            &w.name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"spec": {"replicas": w.replicas}})),
                        )
                        .await
                        .ctx(|| format!("scaling {}", w.name))?;
                }
                let ready = set
                    .data
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                observed.push(Observed {
                    exists: true,
                    desired: w.replicas,
                    ready,
                });
            }
        }
    }
    let current = db.data.pointer("/status/phase").and_then(Value::as_str);
    let phase = build::phase(current, &observed);
    let generation = db.metadata.generation.unwrap_or(0);
    let observed_gen = db
        .data
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if current != Some(phase) || observed_gen != Some(generation) {
        ignore_codes(
            db_api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": phase, "observedGeneration": generation}})),
                )
                .await,
            &[404],
        )
        .ctx(|| format!("updating phase of {}", key.name))?;
    }
    Ok(None)
}

async fn ensure_services(ctx: &Ctx, db: &DynamicObject) -> Result<(), Error> {
    let ns = db.namespace().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    for svc in build::services(ctx.kind, db) {
        let svc: Service = serde_json::from_value(svc).map_err(|e| malformed("service", e))?;
        let name = svc.name_any();
        if ctx.services.get(&ObjectRef::new(&name).within(&ns)).is_some() {
            continue;
        }
        ignore_codes(api.create(&PostParams::default(), &svc).await, &[409])
            .ctx(|| format!("creating service {name}"))?;
    }
    Ok(())
}
