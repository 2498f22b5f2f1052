//! The steps of docs/ARCHITECTURE.md, "The step machine". Each is idempotent: it looks at the cluster and the request's
//! saved state, does at most what is still missing, and says whether the step is finished.

pub mod admit;
pub mod cleanup;
pub mod database;
pub mod expand;
pub mod guard;
pub mod pause;
pub mod resize_wait;
pub mod workloads;

use std::{collections::BTreeMap, time::Duration};

use kube::{
    Api, ResourceExt,
    api::{DynamicObject, Patch, PatchParams},
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
    ownership::DatabaseId,
    saved::{Admitted, RequestIdentity, SavedState},
    saved_store::{self, Stored},
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
    /// The request's saved state once read ([`Job::load_saved`]); None when it has none.
    pub saved: Option<Stored>,
    /// Whether `saved` was read in this reconcile.
    pub saved_loaded: bool,
}

impl Job {
    /// The job of a request; `raw` stays null until [`Job::with_raw`] (only Admit reads it, and
    /// the request is large once it holds saved manifests). The typed request carries the
    /// defaults (`shared/src/defaults.rs`) whether or not the webhook saw it: a request created
    /// without a timeout runs with the default one.
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
            saved: None,
            saved_loaded: false,
        })
    }

    /// The job of a request whose spec this controller's types cannot read (`obj`: the request
    /// as the API server stores it): enough of it to claim, fail and clean up like any other
    /// (`reconcile::unreadable`); it never reaches a step that reads the spec.
    pub fn unreadable(kind: DatabaseKind, obj: &DynamicObject) -> Self {
        let status = obj
            .data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        let database = obj.data.pointer("/spec/databaseRef/name").and_then(Value::as_str);
        Self {
            kind,
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            generation: obj.metadata.generation,
            resource_version: obj.resource_version(),
            database: database.unwrap_or_default().to_owned(),
            target: None,
            mode: VolumeExpansionMode::default(),
            apply: ApplyPolicy::default(),
            timeout: None,
            max_retries: 0,
            annotations: obj.annotations().clone(),
            status,
            raw: Value::Null,
            uid: obj.uid(),
            deleting: obj.metadata.deletion_timestamp.is_some(),
            finalizers: obj.finalizers().to_vec(),
            saved: None,
            saved_loaded: false,
        }
    }

    /// The job of a saved state whose request is gone (the sweep cleans up after it).
    pub fn orphaned(stored: Stored) -> Option<Self> {
        let r = &stored.state.request;
        Some(Self {
            kind: r.database_kind()?,
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            generation: None,
            resource_version: None,
            database: r.database.clone(),
            target: None,
            mode: VolumeExpansionMode::default(),
            apply: ApplyPolicy::default(),
            timeout: None,
            max_retries: 0,
            annotations: BTreeMap::new(),
            status: OpsRequestStatus::default(),
            raw: Value::Null,
            uid: Some(r.uid.clone()),
            deleting: true,
            finalizers: Vec::new(),
            saved: Some(stored),
            saved_loaded: true,
        })
    }

    fn request_uid(&self) -> Result<&str> {
        self.uid
            .as_deref()
            .ok_or_else(|| Error::Invalid(format!("{} has no uid", self.describe())))
    }

    /// Reads the request's saved state (once per reconcile).
    pub async fn load_saved(&mut self, ctx: &Ctx) -> Result<Option<&SavedState>> {
        if !self.saved_loaded {
            let uid = self.request_uid()?.to_owned();
            self.saved = saved_store::load(ctx, &uid).await?;
            self.saved_loaded = true;
        }
        Ok(self.saved.as_ref().map(|s| &s.state))
    }

    /// The saved state to change, read or (when there is none) started for this request.
    pub async fn saved_mut(&mut self, ctx: &Ctx) -> Result<&mut SavedState> {
        self.load_saved(ctx).await?;
        if self.saved.is_none() {
            let identity = RequestIdentity {
                kind: self.kind.ops_kind().to_owned(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                uid: self.request_uid()?.to_owned(),
                database: self.database.clone(),
            };
            self.saved = Some(Stored::new(SavedState::new(identity)));
        }
        match self.saved.as_mut() {
            Some(s) => Ok(&mut s.state),
            None => Err(Error::Invalid("no saved state".into())),
        }
    }

    /// Writes the saved state changed through [`Job::saved_mut`].
    pub async fn save(&mut self, ctx: &Ctx) -> Result<()> {
        match self.saved.as_mut() {
            Some(stored) => saved_store::save(ctx, stored).await,
            None => Ok(()),
        }
    }

    /// The saved state (read by [`Job::load_saved`]); a step past Admit has one.
    pub fn state(&self) -> Result<&SavedState> {
        self.saved
            .as_ref()
            .map(|s| &s.state)
            .ok_or_else(|| Error::Invalid(format!("{} has no saved state", self.describe())))
    }

    /// What Admit accepted.
    pub fn admitted(&self) -> Result<&Admitted> {
        self.state()?
            .admitted
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("{} was not admitted", self.describe())))
    }

    /// The database as admitted (its UID).
    pub fn database_id(&self) -> Result<DatabaseId> {
        Ok(DatabaseId {
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.database.clone(),
            uid: self.admitted()?.database_uid.clone(),
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

    /// The request's database as messages name it: "Redis demo/rd-quickstart".
    pub fn describe_database(&self) -> String {
        format!("{} {}/{}", self.kind.kind(), self.namespace, self.database)
    }

    /// The size in the request's spec as it is now (Admit judges this one).
    pub fn spec_target(&self) -> Result<&Quantity> {
        self.target.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "spec.volumeExpansion.{} is missing or not a quantity",
                self.kind.size_field()
            ))
        })
    }

    /// The size admitted: what every step after Admit carries out.
    pub fn target(&self) -> Result<Quantity> {
        let text = &self.admitted()?.target;
        Quantity::parse(text).map_err(|e| Error::Invalid(format!("admitted size {text}: {e}")))
    }

    /// The ops request through a dynamic API (the steps are not generic).
    pub fn api(&self, ctx: &Ctx) -> Api<DynamicObject> {
        let ar = self.kind.ops_resource();
        Api::namespaced_with(ctx.client.clone(), &self.namespace, &ar)
    }

    /// Keeps the resourceVersion a write returned, here and (with the object) in the
    /// process's record.
    pub fn wrote(&mut self, ctx: &Ctx, obj: DynamicObject) {
        self.resource_version = obj.resource_version();
        ctx.request_versions
            .wrote(self.kind, &self.namespace, &self.name, obj);
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
/// a paused database keeps: the cached copy will do). A topology past the limits is
/// `Ok(Err(reason))`: it fails the request, never the process.
pub async fn database_workloads(ctx: &Ctx, job: &Job) -> Result<Result<Vec<Workload>, String>> {
    let cached = ctx
        .caches(job.kind)
        .and_then(|c| c.database(&job.namespace, &job.database));
    let view = match cached {
        Some(db) => db.view,
        None => {
            let db = get_database(ctx, job).await?.ok_or_else(|| {
                Error::Invalid(format!(
                    "{} {}/{} does not exist",
                    job.kind.kind(),
                    job.namespace,
                    job.database
                ))
            })?;
            DatabaseView::from_json(job.kind, &to_json("database", &db)?)
        }
    };
    Ok(workloads(job.kind, &job.database, &view.topology)
        .map_err(|e| format!("{} {}/{}: {e}", job.kind.kind(), job.namespace, job.database)))
}
