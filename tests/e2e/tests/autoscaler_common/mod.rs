//! Helpers of the storage autoscaler's end-to-end tests (issue 22): the harness (sandbox, the
//! webhook over HTTPS registered as the chart registers it, the controller deciding every
//! second), databases from examples/, autoscalers, volumes filled through the sandbox's own
//! control, and polls of what the controller did.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use volops_controller::autoscaler::AutoscalerConfig;
use volops_e2e::wait::{at, wait_ready};
use volops_e2e::{Harness, HarnessOptions, repo_root};
use volops_sandbox::{ClusterConfig, Fill};
use volops_shared::DatabaseKind;

pub const NS: &str = "demo";
/// The controller decides every second in these tests.
pub const INTERVAL: Duration = Duration::from_secs(1);
pub const TIMEOUT: Duration = Duration::from_secs(90);

pub async fn harness(
    cluster: ClusterConfig,
    autoscaler: AutoscalerConfig,
    start_controller: bool,
) -> Harness {
    Harness::start(HarnessOptions {
        cluster,
        autoscaler,
        start_controller,
        timeout: TIMEOUT,
        ..HarnessOptions::default()
    })
    .await
    .expect("harness starts")
}

pub fn every_second() -> AutoscalerConfig {
    AutoscalerConfig {
        interval: INTERVAL,
        ..AutoscalerConfig::default()
    }
}

/// Applies examples/ files (namespace and StorageClasses first).
pub async fn examples(h: &Harness, files: &[&str]) {
    let dir = repo_root().join("examples");
    for f in ["namespace.yaml", "storageclasses.yaml"].iter().chain(files) {
        h.apply_file(&dir.join(f))
            .await
            .unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

pub async fn ready(h: &Harness, kind: DatabaseKind, name: &str) {
    wait_ready(&h.databases(kind, NS), name, TIMEOUT).await.unwrap();
}

pub fn autoscaler_kind(kind: DatabaseKind) -> &'static str {
    volops_shared::api::autoscaler::autoscaler_kind(kind)
}

pub fn autoscalers(h: &Harness, kind: DatabaseKind) -> Api<DynamicObject> {
    h.dynamic(
        &volops_controller::autoscaler::watch::autoscaler_resource(kind),
        NS,
    )
}

/// Applies an autoscaler `name` of `db` whose `section` (`cluster`, `standalone`,
/// `zookeeper`) is `section_yaml` (indented 6 spaces).
pub async fn autoscaler(
    h: &Harness,
    kind: DatabaseKind,
    name: &str,
    db: &str,
    section: &str,
    section_yaml: &str,
) {
    let yaml = format!(
        "apiVersion: autoscaling.kubedb.com/v1alpha1\nkind: {}\nmetadata:\n  name: {name}\n  namespace: {NS}\n\
         spec:\n  databaseRef:\n    name: {db}\n  storage:\n    {section}:\n{section_yaml}",
        autoscaler_kind(kind)
    );
    h.apply_yaml(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{yaml}\n{e}"));
}

/// The database's PVCs, by name.
pub async fn pvcs(h: &Harness, db: &str) -> Vec<PersistentVolumeClaim> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/instance={db}"));
    let mut list = api.list(&lp).await.unwrap().items;
    list.sort_by_key(|p| p.metadata.name.clone());
    list
}

pub fn capacity(p: &PersistentVolumeClaim) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

/// Fills the first PVC of the database to `percent` of its capacity.
pub async fn fill(h: &Harness, db: &str, percent: f64) {
    let name = pvcs(h, db).await[0].metadata.name.clone().unwrap();
    h.sandbox()
        .fill_volume(NS, &name, Fill::Percent(percent))
        .await
        .unwrap();
}

/// The ops requests the autoscaler owns, oldest first.
pub async fn owned(h: &Harness, kind: DatabaseKind, autoscaler: &str) -> Vec<DynamicObject> {
    let mut list: Vec<DynamicObject> = h
        .ops_requests(kind, NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|r| {
            r.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.name == autoscaler)
        })
        .collect();
    list.sort_by_key(|r| r.metadata.creation_timestamp.clone().map(|t| t.0));
    list
}

/// Polls `probe` until it answers Some, or panics after [`TIMEOUT`] naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the autoscaler owns `n` requests and the newest is final; returns them.
pub async fn requests_done(
    h: &Harness,
    kind: DatabaseKind,
    autoscaler: &str,
    n: usize,
) -> Vec<DynamicObject> {
    eventually(&format!("{n} finished request(s) of {autoscaler}"), || async {
        let list = owned(h, kind, autoscaler).await;
        let done = list.len() == n && list.last().is_some_and(volops_e2e::wait::is_final);
        assert!(list.len() <= n, "more than {n} request(s): {:#?}", names(&list));
        done.then_some(list)
    })
    .await
}

pub fn names(list: &[DynamicObject]) -> Vec<String> {
    list.iter().filter_map(|r| r.metadata.name.clone()).collect()
}

/// The autoscaler's condition of `type_`.
pub async fn condition(h: &Harness, kind: DatabaseKind, name: &str, type_: &str) -> Option<Value> {
    let a = autoscalers(h, kind).get(name).await.ok()?;
    a.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// Waits until the autoscaler's `Decision` condition has `reason`; returns its message.
pub async fn decision(h: &Harness, kind: DatabaseKind, name: &str, reason: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let c = condition(h, kind, name, "Decision").await;
        if let Some(c) = c.as_ref().filter(|c| c["reason"] == reason) {
            return c["message"].as_str().unwrap_or_default().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{name}'s decision is not {reason}: {c:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn phase(h: &Harness, kind: DatabaseKind, name: &str) -> String {
    let a = autoscalers(h, kind).get(name).await.unwrap();
    at(&a, "/status/phase").unwrap_or_default().to_owned()
}

/// Over `intervals` intervals, asserts the autoscaler creates nothing more than `n` requests.
pub async fn no_more_than(h: &Harness, kind: DatabaseKind, autoscaler: &str, n: usize, intervals: u32) {
    for _ in 0..intervals * 2 {
        tokio::time::sleep(INTERVAL / 2).await;
        let list = owned(h, kind, autoscaler).await;
        assert_eq!(
            list.len(),
            n,
            "{autoscaler} created another request: {:?}",
            names(&list)
        );
    }
}

/// The events about the named object, as (reason, note).
pub async fn events(h: &Harness, name: &str) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(h.client(), NS);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// The size a request asks for.
pub fn size(r: &DynamicObject, kind: DatabaseKind) -> String {
    at(r, &format!("/spec/volumeExpansion/{}", kind.size_field()))
        .unwrap_or_default()
        .to_owned()
}
