//! Following one expansion live: a bar of PVCs at the target size, a line per new
//! condition of the ops request, until the request is done.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use volops_shared::{DatabaseKind, Quantity};

use super::Output;
use crate::Harness;
use crate::error::{Error, Result, kube_ctx};
use crate::wait::{is_final, phase};

/// How an expansion ended.
#[derive(Clone, Debug)]
pub struct Expansion {
    pub kind: DatabaseKind,
    pub namespace: String,
    pub request: String,
    pub database: String,
    pub target: String,
    pub phase: String,
    /// Condition types in the order they were first seen.
    pub steps: Vec<String>,
    pub elapsed: Duration,
}

impl Expansion {
    pub fn succeeded(&self) -> bool {
        self.phase == "Successful"
    }
}

/// The PVCs of a database (the KubeDB instance label).
pub fn pvc_selector(db: &str) -> String {
    format!("app.kubernetes.io/instance={db}")
}

pub(crate) fn capacity(pvc: &PersistentVolumeClaim) -> Option<String> {
    pvc.status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.clone())
}

fn at_target(cap: Option<&String>, target: &Quantity) -> bool {
    cap.and_then(|c| Quantity::parse(c).ok())
        .is_some_and(|q| q >= *target)
}

/// Follows the request until it is done or `timeout` passes.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
pub async fn follow(
    h: &Harness,
    out: &Output,
    kind: DatabaseKind,
    ns: &str,
    request: &str,
    db: &str,
    target: &str,
    pvc_count: u64,
    timeout: Duration,
) -> Result<Expansion> {
    let started = Instant::now();
    let want = Quantity::parse(target).map_err(|e| Error::Invalid(format!("target {target}: {e}")))?;
    let bar = out.bar(db, pvc_count);
    let ops = h.ops_requests(kind, ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), ns);
    let req_cfg = watcher::Config::default().fields(&format!("metadata.name={request}"));
    let mut req_events = std::pin::pin!(watcher(ops.clone(), req_cfg).default_backoff().applied_objects());
    let pvc_cfg = watcher::Config::default().labels(&pvc_selector(db));
    let mut pvc_events = std::pin::pin!(watcher(pvcs, pvc_cfg).default_backoff().applied_objects());
    let mut caps: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut steps = Vec::new();
    let mut last: Option<DynamicObject> = None;
    // The bar is only decoration: if its watch ends, the request watch still decides.
    let mut pvc_open = true;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let done = loop {
        tokio::select! {
            ev = req_events.next() => {
                let Some(ev) = ev else { break None };
                let r = ev.map_err(|e| Error::Invalid(format!("watching {request}: {e}")))?;
                for (type_, status, reason, message) in conditions(&r) {
                    if seen.insert((type_.clone(), status.clone(), reason.clone())) {
                        if !steps.contains(&type_) {
                            steps.push(type_.clone());
                        }
                        let text = format!("  {:<13} {type_:<25} {status:<5} {message}", cut(db, 13));
                        out.line(cut(&text, 79));
                    }
                }
                bar.set_message(phase(&r).unwrap_or("Pending").to_owned());
                let finished = is_final(&r);
                last = Some(r);
                if finished {
                    break last.clone();
                }
            }
            ev = pvc_events.next(), if pvc_open => {
                let pvc = match ev {
                    Some(Ok(pvc)) => pvc,
                    Some(Err(_)) => continue,
                    None => {
                        pvc_open = false;
                        continue;
                    }
                };
                caps.insert(pvc.name_any(), capacity(&pvc));
                let n = caps.values().filter(|c| at_target(c.as_ref(), &want)).count();
                bar.set_position(n as u64);
            }
            _ = &mut deadline => break None,
        }
    };
    bar.finish();
    let Some(r) = done else {
        let now = ops
            .get_opt(request)
            .await
            .map_err(kube_ctx(format!("reading {request}")))?;
        return Err(Error::Timeout {
            what: format!("{} {request} to finish", kind.ops_kind()),
            after: timeout,
            last: format!("{:?}", now.or(last).map(|o| o.data)),
        });
    };
    let result = Expansion {
        kind,
        namespace: ns.to_owned(),
        request: request.to_owned(),
        database: db.to_owned(),
        target: target.to_owned(),
        phase: phase(&r).unwrap_or_default().to_owned(),
        steps,
        elapsed: started.elapsed(),
    };
    out.line(format!(
        "{db}: {} {} in {:.1}s",
        kind.ops_kind(),
        result.phase,
        result.elapsed.as_secs_f64()
    ));
    Ok(result)
}

/// (type, status, reason, message) of each condition.
fn conditions(r: &DynamicObject) -> Vec<(String, String, String, String)> {
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    r.data
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .map(|c| (s(c, "type"), s(c, "status"), s(c, "reason"), s(c, "message")))
                .collect()
        })
        .unwrap_or_default()
}

/// `s` cut to `width` characters, marking a cut with `~`.
pub(crate) fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('~');
    t
}
