//! Rules 5 and 6: every volume sits on a class that can expand, is bound, and is not resizing.

use super::{Ctx, Denial, Rule, RuleResult};
use crate::{
    api::OpsRequestPhase,
    facts::{DatabaseView, Facts, PvcView},
};

/// Whose class is checked; put into words only when a message needs it.
enum Owner<'a> {
    Database(&'a DatabaseView),
    Pvc(&'a PvcView),
}

impl Owner<'_> {
    fn describe(&self, facts: &Facts) -> String {
        match self {
            Owner::Database(db) => format!(
                "spec.storage of {} {}/{}",
                facts.kind.kind(),
                db.namespace,
                db.name
            ),
            Owner::Pvc(p) => format!("PVC {}", p.name),
        }
    }
}

/// Rule 5 for one volume: its class (or the cluster default) exists and can expand.
fn check_class(facts: &Facts, class: Option<&str>, owner: Owner<'_>) -> RuleResult {
    let class = class.or_else(|| facts.default_storage_class().map(|c| c.name.as_str()));
    let Some(class) = class.filter(|c| !c.is_empty()) else {
        return Err(Denial::new(
            Rule::StorageClass,
            format!(
                "{} has no StorageClass and the cluster has no default one; only dynamically \
                 provisioned volumes can be expanded",
                owner.describe(facts)
            ),
        ));
    };
    match facts.storage_class(class) {
        None => Err(Denial::new(
            Rule::StorageClass,
            format!(
                "StorageClass {class:?} of {} does not exist; volumes of a missing class cannot be \
                 expanded, so recreate the class (with allowVolumeExpansion: true) first",
                owner.describe(facts)
            ),
        )),
        Some(sc) if !sc.allow_expansion => Err(Denial::new(
            Rule::StorageClass,
            format!(
                "StorageClass {class:?} of {} does not allow volume expansion; ask your cluster admin \
                 to set allowVolumeExpansion: true on it (if its driver supports resizing)",
                owner.describe(facts)
            ),
        )),
        Some(_) => Ok(Vec::new()),
    }
}

/// Rule 5: the StorageClass of every volume (the database's own class when it has no PVC yet)
/// exists and has `allowVolumeExpansion: true`.
pub(crate) fn check_classes(ctx: &Ctx<'_>) -> RuleResult {
    let facts = ctx.facts;
    let pvcs = ctx.db_pvcs();
    if pvcs.is_empty() {
        return match &facts.database {
            Some(db) => check_class(facts, db.storage_class.as_deref(), Owner::Database(db)),
            None => Ok(Vec::new()),
        };
    }
    for &p in pvcs {
        check_class(facts, p.storage_class.as_deref(), Owner::Pvc(p))?;
    }
    Ok(Vec::new())
}

/// Rule 6: every PVC of the database is Bound and has no resize in flight.
pub(crate) fn check_pvcs(ctx: &Ctx<'_>) -> RuleResult {
    for pvc in ctx.db_pvcs() {
        let phase = pvc.phase.as_deref().unwrap_or("Pending");
        if phase != "Bound" {
            return Err(Denial::new(
                Rule::PvcState,
                format!(
                    "PVC {} is {phase}, not Bound; wait until every volume of the database is bound, then retry",
                    pvc.name
                ),
            ));
        }
        let n = |q: &Option<crate::facts::QuantityText>| q.as_ref().and_then(|q| q.nanos());
        let requested_more = matches!((n(&pvc.request), n(&pvc.capacity)), (Some(r), Some(c)) if r > c);
        let resizing = pvc.resize_status().is_some()
            || pvc
                .true_conditions()
                .iter()
                .any(|c| c == "Resizing" || c == "FileSystemResizePending");
        if (requested_more || resizing)
            && let Some(earlier) = resizing_for(ctx.facts)
        {
            // The resize is an earlier volops request's: this one queues behind it (KubeDB's
            // single-flight per database) and is judged again when it starts.
            return Ok(vec![format!(
                "PVC {} is resizing for {} {}/{earlier}; this request stays Pending until that one is over, \
                 and is judged again then",
                pvc.name,
                ctx.facts.kind.ops_kind(),
                ctx.facts.request.namespace
            )]);
        }
        if requested_more || resizing {
            return Err(Denial::new(
                Rule::PvcState,
                format!(
                    "PVC {} already has a resize in progress (requested {}, capacity {}); wait until it finishes, \
                     then retry",
                    pvc.name,
                    text_or_unknown(&pvc.request),
                    text_or_unknown(&pvc.capacity)
                ),
            ));
        }
    }
    Ok(Vec::new())
}

/// The earlier volops request of the same database that is Progressing, whose resize a PVC
/// in flight is (a resize done by hand has none).
fn resizing_for(facts: &Facts) -> Option<&str> {
    let this = &facts.request;
    facts
        .other_requests
        .iter()
        .find(|o| {
            o.name != this.name
                && o.namespace == this.namespace
                && o.database == this.database
                && o.is_volume_expansion()
                && o.phase == Some(OpsRequestPhase::Progressing)
        })
        .map(|o| o.name.as_str())
}

/// A PVC's quantity for a message, `?` when it has none.
pub(crate) fn text_or_unknown(q: &Option<crate::facts::QuantityText>) -> String {
    q.as_ref().map_or_else(|| "?".to_owned(), ToString::to_string)
}
