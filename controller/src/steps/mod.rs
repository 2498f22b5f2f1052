//! The steps of DESIGN.md §5. Each is idempotent: it looks at the cluster and the request's
//! annotations, does at most what is still missing, and says whether the step is finished.

pub mod admit;
pub mod cleanup;
pub mod database;
pub mod expand;
pub mod pause;
pub mod workloads;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use kube::{
    Api, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
};
use serde_json::{Value, json};
use volops_shared::{
    DatabaseKind, Quantity, Workload,
    api::{ApplyPolicy, Condition, OpsRequestStatus, VolumeExpansionMode},
    descriptor::workloads,
    facts::DatabaseView,
};

use crate::{
    context::Ctx,
    error::{Error, KubeContext, Result},
    ops::OpsRequest,
};

/// What a step reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished: record these conditions (True) and go on.
    Done(Vec<Condition>),
    /// Made progress or is waiting for the cluster; look again after this long (watches usually
    /// wake the request earlier).
    Wait { reason: String, after: Duration },
    /// Cannot succeed; fail the request with this reason (the cleanup follows).
    Fail(String),
    /// Superseded by a newer request (Admit only).
    Skip(String),
}

impl Outcome {
    pub fn wait(reason: impl Into<String>, after: Duration) -> Self {
        Self::Wait {
            reason: reason.into(),
            after,
        }
    }
}

/// Short and long waits while something happens in the cluster.
pub const SOON: Duration = Duration::from_secs(2);
pub const LATER: Duration = Duration::from_secs(10);

/// One ops request, whatever its kind, as the steps see it.
#[derive(Clone, Debug)]
pub struct Job {
    pub kind: DatabaseKind,
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub resource_version: Option<String>,
    pub database: String,
    pub target: Option<Quantity>,
    pub mode: VolumeExpansionMode,
    pub apply: ApplyPolicy,
    pub timeout: Option<String>,
    pub max_retries: i32,
    pub annotations: BTreeMap<String, String>,
    pub status: OpsRequestStatus,
    /// The request as JSON, for the shared rules' views (see [`Job::with_raw`]).
    pub raw: Value,
    pub uid: Option<String>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Job {
    /// The job of a request; `raw` stays null until [`Job::with_raw`] (only Admit reads it, and
    /// the request is large once it holds saved manifests).
    pub fn from_request<R: OpsRequest>(req: &R) -> Result<Self> {
        Ok(Self {
            kind: R::KIND,
            namespace: req.namespace().unwrap_or_default(),
            name: req.name_any(),
            generation: req.meta().generation,
            resource_version: req.resource_version(),
            database: req.database().to_owned(),
            target: req.target_text().and_then(|t| Quantity::parse(t).ok()),
            mode: req.mode(),
            apply: req.apply_policy(),
            timeout: req.timeout().map(str::to_owned),
            max_retries: req.max_retries(),
            annotations: req.annotations().clone(),
            status: req.status().cloned().unwrap_or_default(),
            raw: Value::Null,
            uid: req.uid(),
            deleting: req.meta().deletion_timestamp.is_some(),
            finalizers: req.finalizers().to_vec(),
        })
    }

    /// Fills `raw` from the request.
    pub fn with_raw<R: OpsRequest>(&mut self, req: &R) -> Result<()> {
        self.raw = to_json("ops request", req)?;
        Ok(())
    }

    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.ops_kind(), self.namespace, self.name)
    }

    pub fn target(&self) -> Result<&Quantity> {
        self.target.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "spec.volumeExpansion.{} is missing or not a quantity",
                self.kind.size_field()
            ))
        })
    }

    /// The ops request through a dynamic API (the steps are not generic).
    pub fn api(&self, ctx: &Ctx) -> Api<DynamicObject> {
        let ar = ApiResource {
            group: "ops.kubedb.com".into(),
            version: "v1alpha1".into(),
            api_version: "ops.kubedb.com/v1alpha1".into(),
            kind: self.kind.ops_kind().into(),
            plural: self.kind.ops_plural().into(),
        };
        Api::namespaced_with(ctx.client.clone(), &self.namespace, &ar)
    }

    /// Keeps the resourceVersion a write returned, here and (with the object) in the
    /// process's record.
    pub fn wrote(&mut self, ctx: &Ctx, obj: DynamicObject) {
        self.resource_version = obj.resource_version();
        ctx.request_versions
            .wrote(self.kind, &self.namespace, &self.name, obj);
    }

    /// Sets (Some) or removes (None) annotations on the ops request, guarded by the
    /// resourceVersion this reconcile read, and keeps the local copy current.
    pub async fn annotate(&mut self, ctx: &Ctx, changes: &[(String, Option<String>)]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let map: serde_json::Map<String, Value> = changes
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map_or(Value::Null, |v| json!(v))))
            .collect();
        let patch = json!({"metadata": {"resourceVersion": self.resource_version, "annotations": map}});
        let obj = self
            .api(ctx)
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .during(|| format!("annotate {}", self.describe()))?;
        self.wrote(ctx, obj);
        for (k, v) in changes {
            match v {
                Some(v) => self.annotations.insert(k.clone(), v.clone()),
                None => self.annotations.remove(k),
            };
        }
        Ok(())
    }

    /// Writes the whole status (phase and conditions), guarded by the resourceVersion.
    pub async fn write_status(&mut self, ctx: &Ctx, status: OpsRequestStatus) -> Result<()> {
        let body = serde_json::to_value(&status).map_err(|source| Error::Json {
            what: "status".into(),
            source,
        })?;
        let mut body = body;
        // An emptied list must be written as empty, not left out.
        if let Some(m) = body.as_object_mut() {
            m.entry("conditions").or_insert(json!([]));
        }
        let patch = json!({"metadata": {"resourceVersion": self.resource_version}, "status": body});
        let obj = self
            .api(ctx)
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .during(|| format!("update status of {}", self.describe()))?;
        self.wrote(ctx, obj);
        self.status = status;
        Ok(())
    }

    /// Sets these conditions on the status (an intent, not yet done): written before the step
    /// acts, so a crash or failure from there on knows what the step may have touched.
    pub async fn record(&mut self, ctx: &Ctx, conditions: Vec<Condition>) -> Result<()> {
        let mut status = self.status.clone();
        for cond in conditions {
            volops_shared::conditions::set(&mut status.conditions, cond);
        }
        self.write_status(ctx, status).await
    }

    /// The request's object reference for events.
    pub fn reference(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("ops.kubedb.com/v1alpha1".into()),
            kind: Some(self.kind.ops_kind().into()),
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            uid: self.uid.clone(),
            ..Default::default()
        }
    }
}

/// The database as JSON, or None when it does not exist.
pub async fn get_database(ctx: &Ctx, job: &Job) -> Result<Option<DynamicObject>> {
    ctx.database_api(job.kind, &job.namespace)
        .get_opt(&job.database)
        .await
        .during(|| format!("get {} {}/{}", job.kind.kind(), job.namespace, job.database))
}

pub fn to_json<T: serde::Serialize>(what: &str, obj: &T) -> Result<Value> {
    serde_json::to_value(obj).map_err(|source| Error::Json {
        what: what.into(),
        source,
    })
}

/// The database's workloads as KubeDB names them (needs the database for its topology, which
/// a paused database keeps: the cached copy will do).
pub async fn database_workloads(ctx: &Ctx, job: &Job) -> Result<Vec<Workload>> {
    let cached = ctx
        .caches(job.kind)
        .and_then(|c| c.database(&job.namespace, &job.database));
    let db = match cached {
        Some(db) => db,
        None => get_database(ctx, job).await?.map(Arc::new).ok_or_else(|| {
            Error::Invalid(format!(
                "{} {}/{} does not exist",
                job.kind.kind(),
                job.namespace,
                job.database
            ))
        })?,
    };
    let view = DatabaseView::from_json(job.kind, &to_json("database", db.as_ref())?);
    Ok(workloads(job.kind, &job.database, &view.topology))
}
