//! The database's expansions, read from its ops requests (the controller's watch cache):
//! whether one may still act, when the last finished, and the failures in a row of the
//! requests this autoscaler created (its ownerReference). Also the last of those for the
//! autoscaler's status.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use volops_shared::{
    api::{OpsRequestPhase, ops::VOLUME_EXPANSION},
    autoscale::{ExpansionHistory, Failures},
};

/// Condition times have whole seconds: a request that finished at 12:00:00.9 reads 12:00:00.
/// A sample must be newer than the finish itself, so the finish is taken a second later.
const TIME_RESOLUTION: Duration = Duration::from_secs(1);

/// What the autoscaler's status says of its last request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRequest {
    pub name: String,
    pub phase: Option<OpsRequestPhase>,
    pub created: Option<Timestamp>,
    pub finished: Option<Timestamp>,
}

/// One request as the history reads it.
#[derive(Clone, Debug)]
struct Seen {
    name: String,
    expansion: bool,
    owned: bool,
    phase: Option<OpsRequestPhase>,
    created: Option<Timestamp>,
    /// The newest condition's time (plus [`TIME_RESOLUTION`]), for a final request.
    finished: Option<Timestamp>,
}

fn time(v: Option<&Value>) -> Option<Timestamp> {
    v?.as_str()?.parse().ok()
}

fn seen(request: &Value, owner_uid: &str) -> Seen {
    let phase = request
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .and_then(OpsRequestPhase::parse);
    let owned = request
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner_uid))
        });
    let created = time(request.pointer("/metadata/creationTimestamp"));
    let conditions = request.pointer("/status/conditions").and_then(Value::as_array);
    let newest = conditions
        .into_iter()
        .flatten()
        .filter_map(|c| time(c.get("lastTransitionTime")))
        .max();
    let finished = phase
        .filter(|p| p.is_final())
        .and_then(|_| newest.or(created))
        .map(|t| {
            t.checked_add(SignedDuration::from_secs(TIME_RESOLUTION.as_secs() as i64))
                .unwrap_or(t)
        });
    Seen {
        name: request
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        expansion: request.pointer("/spec/type").and_then(Value::as_str) == Some(VOLUME_EXPANSION),
        owned,
        phase,
        created,
        finished,
    }
}

fn failed(phase: Option<OpsRequestPhase>) -> bool {
    matches!(phase, Some(OpsRequestPhase::Failed | OpsRequestPhase::Denied))
}

/// The history of one database from its requests, for the autoscaler of UID `owner_uid`.
/// `pending` is a request this process created that the cache may not show yet.
pub fn history(
    requests: &[Value],
    owner_uid: &str,
    pending: Option<&str>,
) -> (ExpansionHistory, Option<OwnedRequest>) {
    let mut all: Vec<Seen> = requests.iter().map(|r| seen(r, owner_uid)).collect();
    all.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    let active_request = all
        .iter()
        .find(|r| OpsRequestPhase::is_active(r.phase))
        .map(|r| r.name.clone())
        .or_else(|| {
            pending
                .filter(|p| !all.iter().any(|r| r.name == *p))
                .map(str::to_owned)
        });
    let last_finished_at = all
        .iter()
        .filter(|r| {
            r.expansion
                && matches!(
                    r.phase,
                    Some(OpsRequestPhase::Successful | OpsRequestPhase::Failed)
                )
        })
        .filter_map(|r| r.finished)
        .max();
    // The owned expansions that ended, newest last; a Skipped one changed nothing.
    let ended: Vec<&Seen> = all
        .iter()
        .filter(|r| {
            r.owned
                && r.expansion
                && r.phase
                    .is_some_and(|p| p.is_final() && p != OpsRequestPhase::Skipped)
        })
        .collect();
    let consecutive = ended.iter().rev().take_while(|r| failed(r.phase)).count();
    let failures = ended.last().filter(|_| consecutive > 0).map(|last| Failures {
        last_failed_at: last.finished.unwrap_or(Timestamp::UNIX_EPOCH),
        consecutive: u32::try_from(consecutive).unwrap_or(u32::MAX),
    });
    let last_owned = all.iter().rev().find(|r| r.owned).map(|r| OwnedRequest {
        name: r.name.clone(),
        phase: r.phase,
        created: r.created,
        finished: r.finished,
    });
    let history = ExpansionHistory {
        active_request,
        last_finished_at,
        failures,
    };
    (history, last_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(name: &str, created: &str, phase: Option<&str>, finished: &str, owned: bool) -> Value {
        let owners = if owned {
            json!([{"uid": "as-1"}])
        } else {
            json!([])
        };
        json!({"metadata": {"name": name, "creationTimestamp": created, "ownerReferences": owners},
               "spec": {"type": "VolumeExpansion"},
               "status": {"phase": phase, "conditions": [{"type": "Successful", "lastTransitionTime": finished}]}})
    }

    #[test]
    fn failures_in_a_row_of_owned_requests_count_from_the_newest() {
        let requests = [
            request(
                "a",
                "2026-01-01T00:00:00Z",
                Some("Successful"),
                "2026-01-01T00:01:00Z",
                true,
            ),
            request(
                "b",
                "2026-01-01T01:00:00Z",
                Some("Failed"),
                "2026-01-01T01:01:00Z",
                true,
            ),
            request(
                "c",
                "2026-01-01T02:00:00Z",
                Some("Failed"),
                "2026-01-01T02:01:00Z",
                true,
            ),
            request(
                "manual",
                "2026-01-01T03:00:00Z",
                Some("Successful"),
                "2026-01-01T03:01:00Z",
                false,
            ),
        ];
        let (h, last) = history(&requests, "as-1", None);
        assert_eq!(h.active_request, None);
        let f = h.failures.unwrap();
        assert_eq!(f.consecutive, 2);
        assert_eq!(f.last_failed_at.to_string(), "2026-01-01T02:01:01Z");
        assert_eq!(
            h.last_finished_at.unwrap().to_string(),
            "2026-01-01T03:01:01Z",
            "anyone's expansion makes the samples before it stale"
        );
        assert_eq!(last.unwrap().name, "c");
    }

    #[test]
    fn a_running_or_just_created_request_is_active() {
        let running = [request(
            "r",
            "2026-01-01T00:00:00Z",
            Some("Progressing"),
            "2026-01-01T00:00:10Z",
            false,
        )];
        assert_eq!(
            history(&running, "as-1", None).0.active_request.as_deref(),
            Some("r")
        );
        let (h, _) = history(&[], "as-1", Some("rdops-rd-abcdef"));
        assert_eq!(
            h.active_request.as_deref(),
            Some("rdops-rd-abcdef"),
            "not in the cache yet"
        );
        let done = [request(
            "rdops-rd-abcdef",
            "2026-01-01T00:00:00Z",
            Some("Successful"),
            "2026-01-01T00:00:10Z",
            true,
        )];
        let (h, _) = history(&done, "as-1", Some("rdops-rd-abcdef"));
        assert_eq!(h.active_request, None, "the cache shows it finished");
        assert_eq!(h.failures, None);
    }
}
