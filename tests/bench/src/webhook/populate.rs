//! Creates the fixture's objects in the sandbox through the client, many at once.

use std::ops::Range;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use volops_shared::api::VolumeExpansionPolicy;

use super::fixture::{self, Database};

/// Requests in flight while populating.
const PARALLEL: usize = 32;

/// What was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub namespaces: usize,
    pub databases: usize,
    pub pvcs: usize,
    pub ops_requests: usize,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.namespaces += other.namespaces;
        self.databases += other.databases;
        self.pvcs += other.pvcs;
        self.ops_requests += other.ops_requests;
    }

    pub fn to_json(self) -> Value {
        json!({"namespaces": self.namespaces, "databases": self.databases, "pvcs": self.pvcs,
               "ops_requests": self.ops_requests})
    }
}

fn typed<K: DeserializeOwned>(v: Value) -> Result<K> {
    serde_json::from_value(v).context("fixture object does not decode")
}

async fn create<K>(api: &Api<K>, v: Value) -> Result<K>
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = typed(v)?;
    let name = obj.meta().name.clone().unwrap_or_default();
    api.create(&PostParams::default(), &obj)
        .await
        .with_context(|| format!("creating {name}"))
}

/// CRDs, StorageClasses and policies.
pub async fn cluster_wide(client: &kube::Client) -> Result<()> {
    volops_e2e::install_crds(client)
        .await
        .map_err(|e| anyhow::anyhow!("installing CRDs: {e}"))?;
    let classes: Api<StorageClass> = Api::all(client.clone());
    for c in fixture::storage_classes() {
        create(&classes, c).await?;
    }
    let policies: Api<VolumeExpansionPolicy> = Api::all(client.clone());
    for p in fixture::policies() {
        create(&policies, p).await?;
    }
    Ok(())
}

/// Namespaces `range` with their quotas, databases, bound PVCs and existing ops requests.
pub async fn namespaces(client: &kube::Client, range: Range<usize>) -> Result<Counts> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    futures::stream::iter(range.clone())
        .map(|i| {
            let (ns_api, client) = (ns_api.clone(), client.clone());
            async move {
                create(&ns_api, fixture::namespace_json(i)).await?;
                let quotas: Api<ResourceQuota> = Api::namespaced(client, &fixture::namespace_name(i));
                create(&quotas, fixture::quota_json(i)).await.map(drop)
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    let dbs = fixture::databases(range.clone());
    let per_db: Vec<Counts> = futures::stream::iter(dbs)
        .map(|db| database(client.clone(), db))
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    let mut counts = Counts {
        namespaces: range.len(),
        ..Counts::default()
    };
    for c in per_db {
        counts.add(c);
    }
    Ok(counts)
}

async fn database(client: kube::Client, db: Database) -> Result<Counts> {
    let kind = db.kind();
    let dbs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &db.namespace, &kind.database_resource());
    let obj: DynamicObject = typed(db.to_json())?;
    dbs.create(&PostParams::default(), &obj)
        .await
        .with_context(|| format!("creating {} {}/{}", kind.kind(), db.namespace, db.name))?;
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &db.namespace);
    let pvcs = db.pvcs();
    for (name, pod) in &pvcs {
        create(&pvc_api, db.pvc_json(name, pod)).await?;
        pvc_api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(fixture::pvc_status()),
            )
            .await
            .with_context(|| format!("binding PVC {}/{name}", db.namespace))?;
    }
    let ops: Api<DynamicObject> = Api::namespaced_with(client, &db.namespace, &kind.ops_resource());
    let existing = fixture::existing_ops(&db);
    for (obj, phase) in &existing {
        let obj: DynamicObject = typed(obj.clone())?;
        let name = obj.metadata.name.clone().unwrap_or_default();
        ops.create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("creating ops request {}/{name}", db.namespace))?;
        ops.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": phase}})),
        )
        .await
        .with_context(|| format!("setting the phase of {}/{name}", db.namespace))?;
    }
    Ok(Counts {
        namespaces: 0,
        databases: 1,
        pvcs: pvcs.len(),
        ops_requests: existing.len(),
    })
}
