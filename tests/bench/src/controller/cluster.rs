//! The workload in the sandbox: Redis clusters, unrelated PVCs, ops requests, and a watch that
//! says when every object of a set reached a final state.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::{
    core::v1::{Namespace, PersistentVolumeClaim},
    storage::v1::StorageClass,
};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};
use volops_sandbox::{ClusterConfig, Sandbox, SandboxOptions};

/// Requests in flight while creating many objects.
const CREATE_CONCURRENCY: usize = 32;

/// The sandbox with the simulated cluster. Only the resize delay is on the Online critical
/// path; the other delays are short so the databases come up quickly.
pub async fn start(resize_delay: Duration) -> Result<(Sandbox, kube::Client)> {
    let sandbox = Sandbox::start(SandboxOptions {
        cluster: Some(ClusterConfig {
            resize_delay,
            pod_ready_delay: Duration::from_millis(50),
            pod_grace_cap: Duration::from_millis(50),
            pv_provision_delay: Duration::from_millis(10),
            ..ClusterConfig::default()
        }),
        ..SandboxOptions::default()
    })
    .await
    .context("starting the sandbox")?;
    let client = sandbox.client().await.context("sandbox client")?;
    Ok((sandbox, client))
}

pub async fn namespace(client: &kube::Client, name: &str) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {name}")),
    }
}

/// Namespace `ns`, the controller's own namespace (its saved state lives there), an
/// online-expandable class whose every resize step takes `resize_delay`, and the volops CRDs.
pub async fn setup(client: &kube::Client, ns: &str, class: &str, resize_delay: Duration) -> Result<()> {
    namespace(client, ns).await?;
    namespace(client, volops_controller::DEFAULT_STATE_NAMESPACE).await?;
    let sc: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": class},
        "provisioner": "sandbox.volops.dev/csi",
        "allowVolumeExpansion": true,
        "volumeBindingMode": "Immediate",
        "parameters": {"sandbox.volops.dev/resize-mode": "online",
                       "sandbox.volops.dev/resize-delay-ms": resize_delay.as_millis().to_string()}
    }))?;
    Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &sc)
        .await
        .context("creating the storage class")?;
    volops_e2e::install_crds(client)
        .await
        .map_err(|e| anyhow!("installing the CRDs: {e}"))
}

fn dynamic(
    client: &kube::Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(client.clone(), ns, &ar)
}

pub fn redises(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    dynamic(client, ns, "kubedb.com", "v1", "Redis", "redises")
}

pub fn ops_requests(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    dynamic(
        client,
        ns,
        "ops.kubedb.com",
        "v1alpha1",
        "RedisOpsRequest",
        "redisopsrequests",
    )
}

/// Shape of the databases.
#[derive(Clone, Copy, Debug)]
pub struct Topology {
    pub shards: u32,
    pub replicas: u32,
}

impl Topology {
    pub fn pvcs(self) -> u32 {
        self.shards * self.replicas
    }
}

/// Creates the Redis clusters `names` (1Gi on `class`) and waits until all are Ready.
pub async fn create_databases(
    client: &kube::Client,
    ns: &str,
    class: &str,
    names: &[String],
    topology: Topology,
    within: Duration,
) -> Result<Duration> {
    let api = redises(client, ns);
    let start = Instant::now();
    let ready = tokio::spawn(wait_all(
        api.clone(),
        names.iter().cloned().collect(),
        |db| match db.data.pointer("/status/phase").and_then(Value::as_str) {
            Some("Ready") => Final::Ok,
            _ => Final::Not,
        },
        within,
        None,
    ));
    stream::iter(names.iter().cloned())
        .map(|name| {
            let api = api.clone();
            async move {
                let db: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "kubedb.com/v1", "kind": "Redis",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"version": "7.2.4", "mode": "Cluster",
                             "cluster": {"shards": topology.shards, "replicas": topology.replicas},
                             "storage": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                                         "resources": {"requests": {"storage": "1Gi"}}}}
                }))?;
                api.create(&PostParams::default(), &db)
                    .await
                    .with_context(|| format!("creating Redis {name}"))?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let outcome = ready.await.context("database watch")??;
    if !outcome.failed.is_empty() {
        bail!("databases not Ready: {:?}", outcome.failed);
    }
    Ok(start.elapsed())
}

/// Waits (watch) until every database in `names` is Ready again, e.g. after an expansion
/// recreated its workloads; an `apply: IfReady` request would otherwise wait in Admit.
pub async fn wait_databases_ready(
    client: &kube::Client,
    ns: &str,
    names: &[String],
    within: Duration,
) -> Result<()> {
    let outcome = wait_all(
        redises(client, ns),
        names.iter().cloned().collect(),
        |db| match db.data.pointer("/status/phase").and_then(Value::as_str) {
            Some("Ready") => Final::Ok,
            _ => Final::Not,
        },
        within,
        None,
    )
    .await?;
    if !outcome.failed.is_empty() {
        bail!("databases not Ready: {:?}", outcome.failed);
    }
    Ok(())
}

/// Waits until every PVC in `ns` is Bound: a database can be Ready while the provisioner
/// still binds some of its claims, and a run must not start while it does.
pub async fn wait_pvcs_bound(client: &kube::Client, ns: &str, within: Duration) -> Result<()> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + within;
    loop {
        let pvcs = api.list(&Default::default()).await.context("list PVCs")?;
        let unbound = pvcs
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound"))
            .count();
        if unbound == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{unbound} PVC(s) in {ns} still not Bound");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Adds `count` PVCs unrelated to the databases, spread over `namespaces` namespaces. They
/// carry `app.kubernetes.io/instance` (as Helm-installed apps' PVCs do), so they pass the
/// controller's PVC watch selector; their class does not exist, so they stay Pending.
pub async fn add_unrelated_pvcs(client: &kube::Client, count: u32, namespaces: u32) -> Result<()> {
    let namespaces = namespaces.max(1);
    for i in 0..namespaces {
        namespace(client, &format!("other-{i}")).await?;
    }
    stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            async move {
                let ns = format!("other-{}", i % namespaces);
                let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
                    "metadata": {"name": format!("data-app{i}"), "namespace": ns,
                                 "labels": {"app.kubernetes.io/instance": format!("app{}", i / 3),
                                            "app.kubernetes.io/name": "other"}},
                    "spec": {"storageClassName": "not-provisioned", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "1Gi"}}}
                }))?;
                Api::<PersistentVolumeClaim>::namespaced(client, &ns)
                    .create(&PostParams::default(), &pvc)
                    .await
                    .with_context(|| format!("creating PVC {ns}/data-app{i}"))?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// How an expansion of every database ended.
#[derive(Debug)]
pub struct Expansion {
    /// From the first create until the watch saw the last request final.
    pub wall: Duration,
    /// Per condition type: when (since the first create) each request first showed it True.
    pub milestones: BTreeMap<String, Vec<Duration>>,
    /// Requests not Successful, with their phase and last condition message.
    pub failed: Vec<String>,
}

/// Creates one Online RedisOpsRequest to `size` per database, all at once, and waits (watch)
/// until every one is final.
pub async fn expand_all(
    client: &kube::Client,
    ns: &str,
    databases: &[String],
    size: &str,
    tag: &str,
    within: Duration,
) -> Result<Expansion> {
    let api = ops_requests(client, ns);
    let names: Vec<(String, String)> = databases
        .iter()
        .map(|db| (db.clone(), format!("{db}-{tag}")))
        .collect();
    let start = Instant::now();
    let finished = tokio::spawn(wait_all(
        api.clone(),
        names.iter().map(|(_, n)| n.clone()).collect(),
        |r| match r.data.pointer("/status/phase").and_then(Value::as_str) {
            Some("Successful") => Final::Ok,
            Some(p @ ("Failed" | "Skipped")) => Final::Bad(format!("{p}: {}", last_message(r))),
            _ => Final::Not,
        },
        within,
        Some(start),
    ));
    let n = names.len().max(1);
    stream::iter(names)
        .map(|(db, name)| {
            let api = api.clone();
            async move {
                let req: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"type": "VolumeExpansion", "databaseRef": {"name": db},
                             "volumeExpansion": {"mode": "Online", "redis": size}}
                }))?;
                api.create(&PostParams::default(), &req)
                    .await
                    .with_context(|| format!("creating RedisOpsRequest {name}"))?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(n)
        .try_collect::<()>()
        .await?;
    let outcome = finished.await.context("ops request watch")??;
    Ok(Expansion {
        wall: outcome.at.saturating_duration_since(start),
        milestones: outcome.milestones,
        failed: outcome.failed,
    })
}

fn last_message(r: &DynamicObject) -> String {
    let conditions = r.data.pointer("/status/conditions").and_then(Value::as_array);
    // A failure's message is on `VolumeExpansion` with reason Failed (KubeDB's shape).
    conditions
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "VolumeExpansion" && c["reason"] == "Failed")
                .or_else(|| cs.last())
        })
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Where an object is.
pub enum Final {
    Not,
    Ok,
    Bad(String),
}

pub struct Outcome {
    /// When the last object became final.
    pub at: Instant,
    pub failed: Vec<String>,
    /// With a start time: per condition type, when each object first showed it True.
    pub milestones: BTreeMap<String, Vec<Duration>>,
}

/// The condition types that are True on `obj`.
fn true_conditions(obj: &DynamicObject) -> Vec<String> {
    obj.data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                .filter_map(|c| c.get("type").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Watches `api` until every object in `names` is final by `classify`, for at most `within`;
/// with `start`, also records when each condition first turned True.
async fn wait_all(
    api: Api<DynamicObject>,
    names: BTreeSet<String>,
    classify: impl Fn(&DynamicObject) -> Final,
    within: Duration,
    start: Option<Instant>,
) -> Result<Outcome> {
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut milestones: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut state: BTreeMap<String, Option<Result<(), String>>> =
        names.iter().map(|n| (n.clone(), None)).collect();
    let mut pending = names.len();
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let watch = async {
        let mut stream = std::pin::pin!(stream);
        while pending > 0 {
            let ev = stream
                .next()
                .await
                .ok_or_else(|| anyhow!("watch ended"))?
                .context("watch")?;
            let obj = match ev {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => o,
                _ => continue,
            };
            let Some(slot) = state.get_mut(&obj.name_any()) else {
                continue;
            };
            if let Some(start) = start {
                for type_ in true_conditions(&obj) {
                    if seen.insert((obj.name_any(), type_.clone())) {
                        milestones.entry(type_).or_default().push(start.elapsed());
                    }
                }
            }
            if slot.is_some() {
                continue;
            }
            *slot = match classify(&obj) {
                Final::Not => continue,
                Final::Ok => Some(Ok(())),
                Final::Bad(why) => Some(Err(format!("{}: {why}", obj.name_any()))),
            };
            pending -= 1;
        }
        Ok::<_, anyhow::Error>(Instant::now())
    };
    let at = match tokio::time::timeout(within, watch).await {
        Ok(at) => at?,
        Err(_) => bail!("{pending} of {} not final within {within:?}", names.len()),
    };
    let failed = state
        .into_values()
        .filter_map(|s| s.and_then(Result::err))
        .collect();
    Ok(Outcome {
        at,
        failed,
        milestones,
    })
}
