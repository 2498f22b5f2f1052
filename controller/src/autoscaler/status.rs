//! The autoscaler's status: KubeDB's `phase` and `conditions`, plus volops's
//! `lastRecommendation` and `lastRequest` (which KubeDB's CRD prunes: the `Decision` and
//! `LastRequest` conditions carry the same news). Written as a merge patch of `/status` only
//! when it changes, so an autoscaler with nothing new costs no write.

use jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use volops_shared::api::{AutoscalerPhase, LastOpsRequest, OpsRequestPhase, StorageRecommendation};

use super::history::OwnedRequest;

/// The condition that says what the autoscaler decided last, and why.
pub const DECISION: &str = "Decision";
/// The condition that says how its last request went.
pub const LAST_REQUEST: &str = "LastRequest";

/// The status the autoscaler should have now.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub phase: AutoscalerPhase,
    pub generation: Option<i64>,
    /// The decision's reason and message.
    pub reason: String,
    pub message: String,
    /// A new recommendation (an expansion decided now); None keeps the last one.
    pub recommendation: Option<StorageRecommendation>,
    pub last_request: Option<OwnedRequest>,
    pub consecutive_failures: u32,
}

fn phase_name(p: AutoscalerPhase) -> &'static str {
    match p {
        AutoscalerPhase::InProgress => "InProgress",
        AutoscalerPhase::Current => "Current",
        AutoscalerPhase::Terminating => "Terminating",
        AutoscalerPhase::Failed => "Failed",
    }
}

/// `type` set to (status, reason, message), its time kept unless status or reason changed.
fn condition(
    old: &[Value],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Value {
    let before = old.iter().find(|c| c["type"] == type_);
    let same = before.is_some_and(|c| c["status"] == status && c["reason"] == reason);
    let time = match before.and_then(|c| c.get("lastTransitionTime")) {
        Some(t) if same => t.clone(),
        _ => json!(now.to_string()),
    };
    let mut c = json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": time});
    if let Some(g) = generation {
        c["observedGeneration"] = json!(g);
    }
    c
}

fn last_request_condition(
    old: &[Value],
    r: &OwnedRequest,
    kind: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Value {
    let phase = r.phase.map_or("Pending", OpsRequestPhase::as_str);
    let status = match r.phase {
        Some(OpsRequestPhase::Successful) => "True",
        Some(OpsRequestPhase::Failed | OpsRequestPhase::Denied) => "False",
        _ => "Unknown",
    };
    let message = format!("{kind} {} is {phase}", r.name);
    condition(old, LAST_REQUEST, status, phase, &message, generation, now)
}

/// The `status` fields volops writes, from the current status and what is wanted.
pub fn desired(current: &Value, w: &Wanted, ops_kind: &str, now: Timestamp) -> Value {
    let old: Vec<Value> = current["conditions"].as_array().cloned().unwrap_or_default();
    let mut conditions: Vec<Value> = old
        .iter()
        .filter(|c| c["type"] != DECISION && c["type"] != LAST_REQUEST)
        .cloned()
        .collect();
    conditions.push(condition(
        &old,
        DECISION,
        "True",
        &w.reason,
        &w.message,
        w.generation,
        now,
    ));
    if let Some(r) = &w.last_request {
        conditions.push(last_request_condition(&old, r, ops_kind, w.generation, now));
    }
    let mut out = json!({"phase": phase_name(w.phase), "conditions": conditions});
    if let Some(g) = w.generation {
        out["observedGeneration"] = json!(g);
    }
    if let Some(rec) = &w.recommendation {
        out["lastRecommendation"] = json!(rec);
    }
    if let Some(r) = &w.last_request {
        let last = LastOpsRequest {
            name: r.name.clone(),
            phase: r.phase.map(|p| p.as_str().to_owned()),
            created: r.created.map(|t| t.to_string()),
            finished: r.finished.map(|t| t.to_string()),
            consecutive_failures: (w.consecutive_failures > 0).then_some(w.consecutive_failures),
        };
        out["lastRequest"] = json!(last);
    }
    out
}

/// Whether writing `desired` would change `current`.
pub fn changes(current: &Value, desired: &Value) -> bool {
    desired
        .as_object()
        .is_some_and(|fields| fields.iter().any(|(k, v)| current.get(k) != Some(v)))
}

/// Patches the autoscaler's status with `desired`.
pub async fn write(api: &Api<DynamicObject>, name: &str, desired: Value) -> Result<(), kube::Error> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": desired})),
    )
    .await
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(reason: &str, message: &str) -> Wanted {
        Wanted {
            phase: AutoscalerPhase::Current,
            generation: Some(2),
            reason: reason.into(),
            message: message.into(),
            recommendation: None,
            last_request: None,
            consecutive_failures: 0,
        }
    }

    #[test]
    fn an_unchanged_decision_writes_nothing_and_keeps_its_time() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let vpas = json!({"vpas": [{"x": 1}], "conditions": [{"type": "Other", "status": "True"}]});
        let first = desired(&vpas, &wanted("BelowThreshold", "50%"), "RedisOpsRequest", t0);
        let mut stored = vpas.clone();
        for (k, v) in first.as_object().unwrap() {
            stored[k] = v.clone();
        }
        assert_eq!(
            stored["conditions"][0]["type"], "Other",
            "another's condition is kept"
        );
        let again = desired(&stored, &wanted("BelowThreshold", "50%"), "RedisOpsRequest", t1);
        assert!(!changes(&stored, &again), "{again:#}");
        let fuller = desired(&stored, &wanted("BelowThreshold", "60%"), "RedisOpsRequest", t1);
        assert!(changes(&stored, &fuller));
        assert_eq!(
            fuller["conditions"][1]["lastTransitionTime"],
            t0.to_string(),
            "same reason, same time"
        );
        let expand = desired(&stored, &wanted("Expand", "grow"), "RedisOpsRequest", t1);
        assert_eq!(expand["conditions"][1]["lastTransitionTime"], t1.to_string());
        assert!(
            expand.get("vpas").is_none(),
            "KubeDB's fields are left to the merge patch"
        );
    }
}
