//! The demo's storage autoscaler part: a Redis with a `RedisAutoscaler`, its volume filled
//! through the sandbox's own control (as the database writing data would), the autoscaler's
//! one request, and its decision once the volume has grown.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use volops_sandbox::Fill;
use volops_shared::DatabaseKind;

use super::follow::{capacity, pvc_selector};
use super::{Output, PvcRow};
use crate::Harness;
use crate::error::{Error, Result, kube_ctx};
use crate::wait::{is_final, phase, wait_ready};

const NS: &str = "demo";
const DB: &str = "redis-standalone";
const AUTOSCALER: &str = "rd-autoscaler";
/// How full the demo makes the volume (the autoscaler's threshold is 80%).
const FILL_PERCENT: f64 = 85.0;

/// What the autoscaler did.
#[derive(Clone, Debug, Default)]
pub struct Autoscaled {
    /// The requests the autoscaler created (one is expected).
    pub requests: Vec<String>,
    /// The phase of the last one.
    pub phase: String,
    /// The autoscaler's decision once the volume grew (`BelowThreshold` expected).
    pub decision_after: String,
    pub pvcs: Vec<PvcRow>,
}

impl Autoscaled {
    pub fn succeeded(&self) -> bool {
        self.requests.len() == 1 && self.phase == "Successful" && self.decision_after == "BelowThreshold"
    }
}

async fn pvcs(h: &Harness) -> Result<Vec<PersistentVolumeClaim>> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    let list = api
        .list(&ListParams::default().labels(&pvc_selector(DB)))
        .await
        .map_err(kube_ctx(format!("listing the PVCs of {DB}")))?;
    Ok(list.items)
}

async fn owned(h: &Harness) -> Result<Vec<DynamicObject>> {
    let list = h
        .ops_requests(DatabaseKind::Redis, NS)
        .list(&ListParams::default())
        .await
        .map_err(kube_ctx("listing the ops requests"))?;
    let mut owned: Vec<DynamicObject> = list
        .items
        .into_iter()
        .filter(|r| r.owner_references().iter().any(|o| o.name == AUTOSCALER))
        .collect();
    owned.sort_by_key(|r| r.creation_timestamp().map(|t| t.0));
    Ok(owned)
}

/// The autoscaler's `Decision` condition as (reason, message).
async fn decision(h: &Harness) -> Result<Option<(String, String)>> {
    let ar = volops_controller::autoscaler::watch::autoscaler_resource(DatabaseKind::Redis);
    let a = h
        .dynamic(&ar, NS)
        .get(AUTOSCALER)
        .await
        .map_err(kube_ctx("reading the autoscaler"))?;
    let conditions = a
        .data
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .cloned();
    let c = conditions.into_iter().flatten().find(|c| c["type"] == "Decision");
    Ok(c.map(|c| {
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        (text("reason"), text("message"))
    }))
}

/// Polls until `done` holds for the autoscaler's state, printing each new decision.
async fn watch_until(
    h: &Harness,
    out: &Output,
    timeout: Duration,
    last: &mut Option<(String, String)>,
    done: impl Fn(&[DynamicObject], Option<&(String, String)>) -> bool,
) -> Result<(Vec<DynamicObject>, Option<(String, String)>)> {
    let deadline = Instant::now() + timeout;
    loop {
        let (requests, d) = (owned(h).await?, decision(h).await?);
        if d.is_some() && d != *last {
            if let Some((reason, message)) = &d {
                out.line(format!("  {AUTOSCALER}: {reason}"));
                out.line(super::scenario::wrap(message, 79, "    "));
            }
            last.clone_from(&d);
        }
        if done(&requests, d.as_ref()) {
            return Ok((requests, d));
        }
        if Instant::now() > deadline {
            return Err(Error::Invalid(format!(
                "the autoscaler did not get there in {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the autoscaler part of the demo.
pub async fn run_autoscale(
    h: &Harness,
    examples: &Path,
    out: &Output,
    timeout: Duration,
) -> Result<Autoscaled> {
    for file in ["redis-standalone.yaml", "redis-autoscaler.yaml"] {
        for obj in h.apply_file(&examples.join(file)).await? {
            out.line(format!(
                "applied {} {}",
                obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default(),
                obj.name_any()
            ));
        }
    }
    wait_ready(&h.databases(DatabaseKind::Redis, NS), DB, timeout).await?;
    let is = |reason: &'static str| {
        move |_: &[DynamicObject], d: Option<&(String, String)>| d.is_some_and(|d| d.0 == reason)
    };
    let mut last = None;
    watch_until(h, out, timeout, &mut last, is("BelowThreshold")).await?;
    let before = pvcs(h).await?;
    let claim = before
        .first()
        .map(|p| p.name_any())
        .ok_or_else(|| Error::Invalid(format!("{DB} has no PVC")))?;
    h.sandbox()
        .fill_volume(NS, &claim, Fill::Percent(FILL_PERCENT))
        .await
        .map_err(|e| Error::Invalid(format!("filling {claim}: {e}")))?;
    out.line(format!(
        "filled {claim} to {FILL_PERCENT}% (the sandbox's own control)"
    ));
    let grown = |r: &[DynamicObject], d: Option<&(String, String)>| {
        r.last().is_some_and(is_final) && d.is_some_and(|d| d.0 == "BelowThreshold")
    };
    let (requests, d) = watch_until(h, out, timeout, &mut last, grown).await?;
    let after = pvcs(h).await?;
    let rows = before
        .iter()
        .map(|p| PvcRow {
            database: DB.into(),
            pvc: p.name_any(),
            before: capacity(p).unwrap_or_else(|| "-".into()),
            after: after
                .iter()
                .find(|a| a.name_any() == p.name_any())
                .and_then(capacity)
                .unwrap_or_else(|| "missing".into()),
        })
        .collect();
    Ok(Autoscaled {
        requests: requests.iter().map(|r| r.name_any()).collect(),
        phase: requests.last().and_then(phase).unwrap_or_default().to_owned(),
        decision_after: d.map(|d| d.0).unwrap_or_default(),
        pvcs: rows,
    })
}
