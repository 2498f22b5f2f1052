//! The controller in a scale run: its sync, then ops requests that go through its caches to
//! their end (each asks for the size the database already has, so Admit denies it: no resize
//! is needed, as the sandbox runs no storage here).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::Api;
use kube::api::{DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};

use super::{Cluster, Measured};
use crate::proc::{Child, Memory};
use crate::webhook::fixture::{self, Database};

const USER: &str = "volops-controller";
const LABEL: &str = "volops-bench=scale";

async fn spawn(cluster: &Cluster) -> Result<(Child, String)> {
    let args = vec!["serve-controller".to_owned()];
    let child = Child::spawn(&args, &cluster.kubeconfig(USER)?, &[], Duration::from_secs(60)).await?;
    let url = child.info_str("metrics_url")?.to_owned();
    Ok((child, url))
}

/// The sum of the controller's cache sizes whose name ends with `suffix`.
fn cached(metrics: &str, suffix: &str) -> usize {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("volops_controller_cache_objects{cache=\""))
        .filter_map(|l| l.split_once("\"} "))
        .filter(|(name, _)| name.ends_with(suffix))
        .filter_map(|(_, n)| n.trim().parse::<usize>().ok())
        .sum()
}

/// Polls the controller's metrics until its caches are synced and hold `pvcs` PVCs and
/// `databases` databases.
async fn wait_synced(url: &str, pvcs: usize, databases: usize, within: Duration) -> Result<String> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(resp) = http.get(url).send().await
            && let Ok(text) = resp.text().await
            && text.lines().any(|l| l == "volops_controller_caches_synced 1")
            && cached(&text, "/persistentvolumeclaims") >= pvcs
            && cached(&text, "/databases") >= databases
        {
            return Ok(text);
        }
        if Instant::now() >= deadline {
            bail!("controller caches not synced to {pvcs} PVCs within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The controller synced on the cluster as it is now (empty): its resident memory.
pub async fn empty(cluster: &Cluster) -> Result<Memory> {
    let (child, url) = spawn(cluster).await?;
    wait_synced(&url, 0, 0, Duration::from_secs(60)).await?;
    let memory = child.memory()?;
    child.stop(Duration::from_secs(20)).await?;
    Ok(memory)
}

/// Start to synced on the populated cluster, then `requests` ops requests to their end.
pub async fn measure(
    cluster: &Cluster,
    empty: Memory,
    dbs: &[Database],
    requests: usize,
) -> Result<Measured> {
    let before = cluster.requests_of(USER);
    let started = Instant::now();
    let (child, url) = spawn(cluster).await?;
    let c = cluster.counts;
    let text = wait_synced(&url, c.pvcs, c.databases, Duration::from_secs(600)).await?;
    let ready = started.elapsed();
    let api_requests = cluster.requests_of(USER) - before;
    let synced = child.memory()?;
    let cached_objects = cached(&text, "");
    let created = create_requests(cluster, dbs, requests).await?;
    wait_final(cluster, created, Duration::from_secs(600)).await?;
    let loaded = child.memory()?;
    child.stop(Duration::from_secs(20)).await?;
    Ok(Measured {
        ready,
        empty,
        synced,
        loaded,
        cached_objects,
        api_requests,
    })
}

/// One request per database (up to `count`) of those with volumes and no request of their
/// own, asking for the size they have.
async fn create_requests(cluster: &Cluster, dbs: &[Database], count: usize) -> Result<usize> {
    let chosen = dbs
        .iter()
        .filter(|db| !db.pvcs().is_empty() && fixture::existing_ops(db).is_empty())
        .take(count);
    let mut created = 0;
    for db in chosen {
        let kind = db.kind();
        let api: Api<DynamicObject> =
            Api::namespaced_with(cluster.client.clone(), &db.namespace, &kind.ops_resource());
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "ops.kubedb.com/v1alpha1", "kind": kind.ops_kind(),
            "metadata": {"name": format!("{}-scale", db.name), "namespace": db.namespace,
                         "labels": {"volops-bench": "scale"}},
            "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db.name},
                     "volumeExpansion": {"mode": "Online", kind.size_field(): fixture::VOLUME_SIZE}},
        }))
        .context("ops request fixture")?;
        api.create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating a request for {}/{}", db.namespace, db.name))?;
        created += 1;
    }
    Ok(created)
}

/// Waits until `count` labelled requests have a final phase.
async fn wait_final(cluster: &Cluster, count: usize, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let mut done = 0;
        for kind in volops_shared::DatabaseKind::ALL {
            let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &kind.ops_resource());
            let list = api.list(&ListParams::default().labels(LABEL)).await?;
            done += list
                .items
                .iter()
                .filter(|o| {
                    matches!(
                        o.data.pointer("/status/phase").and_then(Value::as_str),
                        Some("Successful" | "Failed" | "Skipped")
                    )
                })
                .count();
        }
        if done >= count {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{done} of {count} requests ended within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
