//! The webhook's decision path in-process, without TLS or HTTP: caches filled with the
//! fixture's objects the way the watches fill them (through the caches' writers), and a timing
//! loop over the review mix through the same handler the HTTP route calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use volops_shared::DatabaseKind;
use volops_shared::api::VolumeExpansionPolicy;
use volops_shared::facts::RuleOptions;
use volops_webhook::Caches;
use volops_webhook::admit::Endpoint;
use volops_webhook::caches::ApplyEvent;
use volops_webhook::metrics::Metrics;
use volops_webhook::routes::{AppState, handle};

use super::{fixture, mix};

fn typed<K: DeserializeOwned>(v: Value) -> Result<K> {
    serde_json::from_value(v).map_err(|e| anyhow!("fixture object: {e}"))
}

fn with_status(mut obj: Value, status: Value) -> Value {
    obj["status"] = status["status"].clone();
    obj
}

/// Feeds one complete list (Init, InitApply..., InitDone) to a cache's writer, as its watch does.
fn list<K>(writer: &mut impl ApplyEvent<K>, objects: Vec<K>) {
    writer.apply_event(&Event::Init);
    for o in objects {
        writer.apply_event(&Event::InitApply(o));
    }
    writer.apply_event(&Event::InitDone);
}

/// The webhook's caches holding the fixture's first `namespaces` namespaces, with live views.
pub fn caches(namespaces: usize) -> Result<Caches> {
    let (caches, mut w) = Caches::new();
    let classes = fixture::storage_classes()
        .into_iter()
        .map(typed)
        .collect::<Result<_>>()?;
    list::<StorageClass>(&mut w.classes, classes);
    let policies = fixture::policies()
        .into_iter()
        .map(typed)
        .collect::<Result<_>>()?;
    list::<VolumeExpansionPolicy>(&mut w.policies, policies);
    let ns = (0..namespaces)
        .map(|n| typed(fixture::namespace_json(n)))
        .collect::<Result<_>>()?;
    list::<Namespace>(&mut w.namespaces, ns);
    let quotas = (0..namespaces)
        .map(|n| typed(fixture::quota_json(n)))
        .collect::<Result<_>>()?;
    list::<ResourceQuota>(&mut w.quotas, quotas);
    let (mut dbs, mut ops, mut pvcs) = ([vec![], vec![]], [vec![], vec![]], vec![]);
    for db in fixture::databases(0..namespaces) {
        let k = usize::from(db.kind() == DatabaseKind::ZooKeeper);
        dbs[k].push(typed::<DynamicObject>(db.to_json())?);
        for (obj, phase) in fixture::existing_ops(&db) {
            ops[k].push(typed::<DynamicObject>(with_status(
                obj,
                json!({"status": {"phase": phase}}),
            ))?);
        }
        for (name, pod) in db.pvcs() {
            let pvc = with_status(db.pvc_json(&name, &pod), fixture::pvc_status());
            pvcs.push(typed::<PersistentVolumeClaim>(pvc)?);
        }
    }
    let [redis, zookeeper] = dbs;
    let [redis_ops, zookeeper_ops] = ops;
    list(&mut w.redis, redis);
    list(&mut w.zookeeper, zookeeper);
    list(&mut w.redis_ops, redis_ops);
    list(&mut w.zookeeper_ops, zookeeper_ops);
    list(&mut w.pvcs, pvcs);
    Ok(caches)
}

/// The admission state the HTTP routes use, on `caches`.
pub fn state(caches: Caches) -> AppState {
    AppState {
        caches,
        options: RuleOptions::default(),
        metrics: Arc::new(Metrics::new()),
    }
}

fn endpoint(review: &mix::Review) -> Endpoint {
    if review.path == "/mutate" {
        Endpoint::Mutate
    } else {
        Endpoint::Validate
    }
}

/// Mean time of one review through the handler (parse, decide, log, count, encode), over at
/// least `rounds` passes of the mix and `min` of wall time; checks every answer once first.
pub fn time_decisions(
    state: &AppState,
    reviews: &[mix::Review],
    rounds: usize,
    min: Duration,
) -> Result<Duration> {
    for r in reviews {
        let resp = handle(endpoint(r), state, &r.body);
        let status = resp.status().as_u16();
        let body = futures::executor::block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
            .map_err(|e| anyhow!("reading the answer: {e}"))?;
        mix::check(r, status, &body, true).map_err(|e| anyhow!(e))?;
    }
    Ok(mean_per_review(reviews, rounds, min, |r| {
        std::hint::black_box(handle(endpoint(r), state, &r.body));
    }))
}

/// Mean time of `each` over the reviews, over at least `rounds` passes and `min` of wall time.
fn mean_per_review(
    reviews: &[mix::Review],
    rounds: usize,
    min: Duration,
    each: impl Fn(&mix::Review),
) -> Duration {
    let started = Instant::now();
    let mut n = 0u32;
    while n < rounds as u32 || started.elapsed() < min {
        reviews.iter().for_each(&each);
        n += 1;
    }
    let total = u32::try_from(reviews.len())
        .unwrap_or(u32::MAX)
        .saturating_mul(n)
        .max(1);
    started.elapsed() / total
}

/// [`time_decisions`] on `threads` threads at once over the same state: the mean time of one
/// review on one thread while the others run too.
pub fn time_parallel(
    state: &AppState,
    reviews: &[mix::Review],
    threads: usize,
    min: Duration,
) -> Result<Duration> {
    let times: Vec<Result<Duration>> = std::thread::scope(|s| {
        let running: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| time_decisions(state, reviews, 3, min)))
            .collect();
        running
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow!("timing thread panicked")))
            })
            .collect()
    });
    let mut total = Duration::ZERO;
    for t in times {
        total += t?;
    }
    Ok(total / u32::try_from(threads).unwrap_or(1).max(1))
}

/// Mean time of one review through the no-op handler's work (find `request.uid`, encode an
/// allow): the part of [`time_decisions`] any webhook pays.
pub fn time_noop(reviews: &[mix::Review], min: Duration) -> Duration {
    mean_per_review(reviews, 3, min, |r| {
        std::hint::black_box(super::serve::noop_answer(&r.body));
    })
}
