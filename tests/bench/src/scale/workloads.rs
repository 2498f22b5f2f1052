//! The StatefulSets of the fixture's databases, as KubeDB names and labels them: the
//! controller caches their metadata, so a scale run must have them.

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use volops_shared::descriptor::workloads;

use crate::webhook::fixture::{Database, VOLUME_SIZE};

/// Requests in flight while creating.
const PARALLEL: usize = 32;

/// One StatefulSet of `db` (its pods are not created: the controller caches none of them).
fn statefulset(db: &Database, name: &str, replicas: i32, claim: &str) -> Value {
    let labels = db.kind().selector_labels(&db.name);
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": db.namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{}-pods", db.name),
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "db", "image": "registry.invalid/db:1"}]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": claim},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": db.class,
                         "resources": {"requests": {"storage": VOLUME_SIZE}}}
            }]
        }
    })
}

/// Creates the StatefulSets of every database in `dbs`; returns how many.
pub async fn create(client: &kube::Client, dbs: &[Database]) -> Result<usize> {
    let mut all = Vec::new();
    for db in dbs {
        let Some(topology) = db.shape.topology() else {
            continue;
        };
        for w in workloads(db.kind(), &db.name, &topology).unwrap_or_default() {
            all.push((
                db.namespace.clone(),
                statefulset(db, &w.name, w.replicas, &w.claim_template),
            ));
        }
    }
    let count = all.len();
    futures::stream::iter(all)
        .map(|(ns, obj)| {
            let api: Api<StatefulSet> = Api::namespaced(client.clone(), &ns);
            async move {
                let sts: StatefulSet = serde_json::from_value(obj).context("StatefulSet fixture")?;
                api.create(&PostParams::default(), &sts)
                    .await
                    .with_context(|| format!("creating StatefulSet {ns}/{:?}", sts.metadata.name))
                    .map(drop)
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(count)
}
