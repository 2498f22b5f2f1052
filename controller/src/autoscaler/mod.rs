//! The storage autoscaler at run time (docs/ARCHITECTURE.md, "Storage autoscaling at run
//! time"): under the same leader election as the ops-request controllers, every
//! `--autoscaler-interval` it reads the volumes' usage once (kubelet Summary or Prometheus),
//! then for each `RedisAutoscaler` and `ZooKeeperAutoscaler` decides with
//! `volops_shared::autoscale::decide` and carries the decision out: at most one VolumeExpansion
//! request for the whole database, owned by the autoscaler.

pub mod describe;
pub mod events;
pub mod history;
pub mod inputs;
pub mod memory;
pub mod request;
pub mod status;
pub mod tick;
pub mod usage;
pub mod watch;

use std::{collections::HashSet, future::Future, sync::Arc, time::Duration};

use jiff::Timestamp;
use kube::{ResourceExt, api::DynamicObject};
use serde_json::Value;
use tokio::time::MissedTickBehavior;
use volops_shared::{DatabaseKind, api::autoscaler::autoscaler_kind};

pub use usage::UsageSourceConfig;

use crate::context::Ctx;
use memory::{Key, Memory};
use usage::{UsageMap, UsageSource};
use watch::AutoscalerStores;

/// `--autoscaler-interval` when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The autoscaler loop's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoscalerConfig {
    /// How often usage is read and every autoscaler decided on.
    pub interval: Duration,
    pub source: UsageSourceConfig,
}

impl Default for AutoscalerConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            source: UsageSourceConfig::default(),
        }
    }
}

/// Whether any storage section of the autoscaler is turned on.
fn is_on(obj: &DynamicObject) -> bool {
    obj.data
        .pointer("/spec/storage")
        .and_then(Value::as_object)
        .is_some_and(|s| {
            s.values()
                .any(|section| section.get("trigger") == Some(&Value::from("On")))
        })
}

/// Reads the usage, once for every autoscaler, when one is on.
async fn read_usage(ctx: &Ctx, source: &UsageSource) -> UsageMap {
    let read = source.read().await;
    for e in &read.errors {
        tracing::warn!(error = %e, "volume usage not read");
        ctx.metrics
            .autoscaler
            .usage_errors
            .get_or_create(&crate::metrics::autoscaler::KindLabels { kind: "usage".into() })
            .inc();
    }
    read.usage
}

/// One interval: every autoscaler of every kind the cluster serves.
async fn tick(ctx: &Ctx, stores: &AutoscalerStores, source: &UsageSource, memory: &mut Memory) {
    let listed: Vec<(DatabaseKind, Vec<Arc<DynamicObject>>)> = DatabaseKind::ALL
        .into_iter()
        .filter_map(|k| Some((k, stores.autoscalers(k)?)))
        .collect();
    let any_on = listed.iter().any(|(_, list)| list.iter().any(|o| is_on(o)));
    let usage = if any_on {
        read_usage(ctx, source).await
    } else {
        UsageMap::new()
    };
    let now = Timestamp::now();
    let mut seen: HashSet<Key> = HashSet::new();
    for (kind, list) in listed {
        for obj in list {
            let key: Key = (
                autoscaler_kind(kind),
                obj.namespace().unwrap_or_default(),
                obj.name_any(),
            );
            let mem = memory.get(&key);
            if let Err(e) = tick::evaluate(ctx, kind, &obj, &usage, mem, now).await {
                tracing::warn!(autoscaler = %key.2, namespace = %key.1, error = %e, "autoscaler not carried out; next interval");
            }
            seen.insert(key);
        }
    }
    for (kind, namespace, name) in memory.retain(&seen) {
        ctx.metrics
            .autoscaler
            .forget(&crate::metrics::autoscaler::AutoscalerLabels {
                kind: kind.into(),
                autoscaler_namespace: namespace,
                autoscaler: name,
            });
    }
}

/// Watches the autoscalers and decides every interval until `stop`.
pub async fn run(ctx: Arc<Ctx>, stop: impl Future<Output = ()> + Send) {
    let (stores, drive) = watch::start(&ctx.client).await;
    let source = UsageSource::new(&ctx.client, &ctx.config.autoscaler.source);
    let mut memory = Memory::default();
    let mut ticker = tokio::time::interval(ctx.config.autoscaler.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let work = async {
        loop {
            ticker.tick().await;
            tick(&ctx, &stores, &source, &mut memory).await;
        }
    };
    tokio::select! {
        () = stop => {}
        () = drive => {}
        () = work => {}
    }
    // A replica that no longer leads reports no autoscaler's usage.
    ctx.metrics.autoscaler.clear();
}
