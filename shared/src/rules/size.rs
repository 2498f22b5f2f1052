//! Rule 4: a volume expansion must grow every volume.

use super::{Denial, Rule, RuleResult};
use crate::{facts::Facts, quantity::Quantity};

/// The requested size, if present and valid.
pub fn target_size(facts: &Facts) -> Option<Quantity> {
    facts
        .request
        .size
        .as_deref()
        .and_then(|s| Quantity::parse(s).ok())
}

/// The current size and where it was found: the largest of the database's `spec.storage` and
/// every PVC's request and capacity.
pub fn current_size(facts: &Facts) -> Option<(Quantity, String)> {
    let mut best: Option<(Quantity, String)> = None;
    let mut offer = |text: Option<&str>, source: String| {
        if let Some(q) = text.and_then(|t| Quantity::parse(t).ok())
            && best.as_ref().is_none_or(|(b, _)| q > *b)
        {
            best = Some((q, source));
        }
    };
    if let Some(db) = &facts.database {
        offer(
            db.storage_request.as_deref(),
            format!(
                "spec.storage of {} {}/{}",
                facts.kind.kind(),
                db.namespace,
                db.name
            ),
        );
    }
    for pvc in facts.database_pvcs() {
        offer(pvc.request.as_deref(), format!("largest PVC {}", pvc.name));
        offer(pvc.capacity.as_deref(), format!("largest PVC {}", pvc.name));
    }
    best
}

/// Rule 4: desired > current, checked only while the request has not started (once it runs,
/// the controller has written the new size into the database, see KUBEDB.md §2.2).
pub(crate) fn check_growing(facts: &Facts) -> RuleResult {
    if !facts.request.is_pending() {
        return Ok(Vec::new());
    }
    let (Some(target), Some((current, source))) = (target_size(facts), current_size(facts)) else {
        return Ok(Vec::new());
    };
    if target > current {
        return Ok(Vec::new());
    }
    Err(Denial::new(
        Rule::NotGrowing,
        format!(
            "desired storage {target} must be greater than the current {current} ({source}); volumes can only grow, \
             so ask for more than {current}"
        ),
    ))
}
