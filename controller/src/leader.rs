//! Leader election on a Lease (kube-lease-manager): only the holder runs the controllers; on
//! losing the lease they stop, and a new leader resumes from the recorded conditions.

use std::{future::Future, time::Duration};

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::info;

use crate::{LeaderConfig, Result, stopped};

pub async fn run_as_leader<F, Fut>(
    client: Client,
    config: &LeaderConfig,
    identity: &str,
    shutdown: watch::Receiver<bool>,
    mut run: F,
) -> Result<()>
where
    F: FnMut(std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>) -> Fut,
    Fut: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, &config.lease_name)
        .with_namespace(&config.namespace)
        .with_identity(identity)
        .with_duration(config.duration)
        .with_grace(config.grace)
        .build()
        .await?;
    let (mut leader, task) = manager.watch().await;
    let mut down = shutdown.clone();
    loop {
        tokio::select! {
            r = leader.wait_for(|l| *l) => if r.is_err() { break },
            _ = down.wait_for(|s| *s) => break,
        }
        info!(identity, "became leader");
        let mut lost = leader.clone();
        let stop_shutdown = stopped(shutdown.clone());
        let stop = Box::pin(async move {
            tokio::select! {
                _ = lost.wait_for(|l| !*l) => {}
                _ = stop_shutdown => {}
            }
        });
        run(stop).await;
        info!(identity, "stopped leading");
        if *shutdown.borrow() {
            break;
        }
        // Give the lease a moment before competing again.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Closing the channel makes the manager release the lease.
    drop(leader);
    task.await
        .map_err(|e| crate::Error::Invalid(format!("lease task: {e}")))??;
    Ok(())
}
