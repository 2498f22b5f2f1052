//! Rule 10 and the controller's queue: one request at a time per database, oldest first; among
//! requests of one type that have not started, only the newest survives (KubeDB's skipper).

use crate::{
    api::OpsRequestPhase,
    facts::{Facts, OpsRequestView},
};

/// What the controller does with a request that has not started yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueDecision {
    /// Start it now.
    Run,
    /// Wait until `behind` (Progressing, or older and still Pending) is done.
    Wait { behind: String },
    /// A newer request of the same type for the same database supersedes it.
    Skip { superseded_by: String },
}

/// Requests sort by creation time; equal times put the lexicographically larger name later
/// (KubeDB treats it as newer).
fn age_key(r: &OpsRequestView) -> (&str, &str) {
    (r.created.as_deref().unwrap_or(""), r.name.as_str())
}

fn same_database<'a>(
    this: &'a OpsRequestView,
    others: &'a [OpsRequestView],
) -> impl Iterator<Item = &'a OpsRequestView> {
    others
        .iter()
        .filter(move |o| o.name != this.name && o.database == this.database && o.namespace == this.namespace)
}

/// Whether `other` makes an older request of the same type obsolete: it is waiting, running or
/// done. (A newer request that Failed or was Skipped does not.)
fn supersedes(other: &OpsRequestView) -> bool {
    other.is_pending()
        || matches!(
            other.phase,
            Some(OpsRequestPhase::Progressing | OpsRequestPhase::Successful)
        )
}

/// Decides whether `this` (not started) runs, waits or is skipped, given the other requests of
/// the same kind in its namespace. Superseding is decided first: if a newer request of the same
/// type already started (the controller may admit the newer one first), the older one must not
/// run after it.
pub fn decide_queue(this: &OpsRequestView, others: &[OpsRequestView]) -> QueueDecision {
    if let Some(newer) = same_database(this, others)
        .filter(|o| o.type_ == this.type_ && age_key(o) > age_key(this) && supersedes(o))
        .max_by(|a, b| age_key(a).cmp(&age_key(b)))
    {
        return QueueDecision::Skip {
            superseded_by: newer.name.clone(),
        };
    }
    if let Some(p) = same_database(this, others).find(|o| o.phase == Some(OpsRequestPhase::Progressing)) {
        return QueueDecision::Wait {
            behind: p.name.clone(),
        };
    }
    let pending: Vec<&OpsRequestView> = same_database(this, others).filter(|o| o.is_pending()).collect();
    // An older pending request of another type that is not itself superseded runs first.
    let survives = |o: &OpsRequestView| {
        o.type_ != this.type_
            && !pending
                .iter()
                .any(|p| p.type_ == o.type_ && age_key(p) > age_key(o))
    };
    if let Some(older) = pending
        .iter()
        .filter(|o| age_key(o) < age_key(this) && survives(o))
        .min_by(|a, b| age_key(a).cmp(&age_key(b)))
    {
        return QueueDecision::Wait {
            behind: older.name.clone(),
        };
    }
    QueueDecision::Run
}

/// Rule 10: admitting a request for a database that already has one under way is allowed, with
/// a warning that says what will happen.
pub(crate) fn queue_warnings(facts: &Facts) -> Vec<String> {
    let this = &facts.request;
    let mut others: Vec<&OpsRequestView> = same_database(this, &facts.other_requests)
        .filter(|o| o.is_active())
        .collect();
    if others.is_empty() {
        return Vec::new();
    }
    others.sort_by(|a, b| age_key(a).cmp(&age_key(b)));
    let ops_kind = facts.kind.ops_kind();
    let db = format!(
        "{} {}/{}",
        facts.kind.kind(),
        this.namespace,
        this.database.as_deref().unwrap_or_default()
    );
    others
        .into_iter()
        .map(|o| match o.phase {
            Some(OpsRequestPhase::Progressing) => format!(
                "{ops_kind} {}/{} is already Progressing for {db}; this request will wait until it finishes",
                o.namespace, o.name
            ),
            // Active, but neither running nor waiting to start (e.g. WaitingForApproval).
            Some(phase) if phase != OpsRequestPhase::Pending => format!(
                "{ops_kind} {}/{} is {} for {db}; this request may wait until it is over",
                o.namespace,
                o.name,
                phase.as_str()
            ),
            _ if o.type_ == this.type_ => format!(
                "{ops_kind} {}/{} is still Pending for {db}; it will be Skipped in favour of this newer request",
                o.namespace, o.name
            ),
            _ => format!(
                "{ops_kind} {}/{} is still Pending for {db}; this request will run after it",
                o.namespace, o.name
            ),
        })
        .collect()
}
