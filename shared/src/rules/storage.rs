//! Rules 5 and 6: every volume sits on a class that can expand, is bound, and is not resizing.

use super::{Denial, Rule, RuleResult};
use crate::{facts::Facts, quantity::Quantity};

/// The class each of the database's volumes uses (the database's own class when it has no PVC
/// yet), with the PVC it belongs to.
fn classes_in_use(facts: &Facts) -> Vec<(Option<String>, String)> {
    let pvcs = facts.database_pvcs();
    if pvcs.is_empty() {
        let Some(db) = &facts.database else {
            return Vec::new();
        };
        let class = db
            .storage_class
            .clone()
            .or_else(|| facts.default_storage_class().map(|c| c.name.clone()));
        return vec![(
            class,
            format!(
                "spec.storage of {} {}/{}",
                facts.kind.kind(),
                db.namespace,
                db.name
            ),
        )];
    }
    pvcs.iter()
        .map(|p| {
            let class = p
                .storage_class
                .clone()
                .or_else(|| facts.default_storage_class().map(|c| c.name.clone()));
            (class, format!("PVC {}", p.name))
        })
        .collect()
}

/// Rule 5: the StorageClass of every volume exists and has `allowVolumeExpansion: true`.
pub(crate) fn check_classes(facts: &Facts) -> RuleResult {
    for (class, owner) in classes_in_use(facts) {
        let Some(class) = class.filter(|c| !c.is_empty()) else {
            return Err(Denial::new(
                Rule::StorageClass,
                format!(
                    "{owner} has no StorageClass and the cluster has no default one; only dynamically \
                     provisioned volumes can be expanded"
                ),
            ));
        };
        match facts.storage_class(&class) {
            None => {
                return Err(Denial::new(
                    Rule::StorageClass,
                    format!(
                        "StorageClass {class:?} of {owner} does not exist; volumes of a missing class cannot be \
                         expanded, so recreate the class (with allowVolumeExpansion: true) first"
                    ),
                ));
            }
            Some(sc) if !sc.allow_expansion => {
                return Err(Denial::new(
                    Rule::StorageClass,
                    format!(
                        "StorageClass {class:?} of {owner} does not allow volume expansion; ask your cluster admin \
                         to set allowVolumeExpansion: true on it (if its driver supports resizing)"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Vec::new())
}

/// Rule 6: every PVC of the database is Bound and has no resize in flight.
pub(crate) fn check_pvcs(facts: &Facts) -> RuleResult {
    for pvc in facts.database_pvcs() {
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
        let q = |s: Option<&str>| s.and_then(|s| Quantity::parse(s).ok());
        let requested_more =
            matches!((q(pvc.request.as_deref()), q(pvc.capacity.as_deref())), (Some(r), Some(c)) if r > c);
        let resizing = pvc.resize_status.is_some()
            || pvc
                .true_conditions
                .iter()
                .any(|c| c == "Resizing" || c == "FileSystemResizePending");
        if requested_more || resizing {
            return Err(Denial::new(
                Rule::PvcState,
                format!(
                    "PVC {} already has a resize in progress (requested {}, capacity {}); wait until it finishes, \
                     then retry",
                    pvc.name,
                    pvc.request.as_deref().unwrap_or("?"),
                    pvc.capacity.as_deref().unwrap_or("?")
                ),
            ));
        }
    }
    Ok(Vec::new())
}
