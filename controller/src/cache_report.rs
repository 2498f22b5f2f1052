//! Reports the watch caches' sizes and whether all are synced as metrics, a few times a
//! second while leading: how an operator (and the scale benchmark) sees the controller's
//! start-up and its memory's main term (docs/PERFORMANCE.md).

use std::{future::Future, sync::Arc, time::Duration};

use crate::{context::Ctx, metrics::CacheLabels};

const EVERY: Duration = Duration::from_millis(250);

/// Updates the cache metrics from `ctx` until `stop`; they read 0 once it stops (a term's
/// caches end with it).
pub async fn run(ctx: Arc<Ctx>, stop: impl Future<Output = ()>) {
    let report = async {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            for (cache, size) in ctx.cache_sizes() {
                let size = size.and_then(|n| i64::try_from(n).ok()).unwrap_or(0);
                ctx.metrics
                    .cache_objects
                    .get_or_create(&CacheLabels { cache })
                    .set(size);
            }
            ctx.metrics.caches_synced.set(i64::from(ctx.caches_synced()));
        }
    };
    tokio::select! {
        () = report => {}
        () = stop => {}
    }
    ctx.metrics.caches_synced.set(0);
    ctx.metrics.cache_objects.clear();
}
