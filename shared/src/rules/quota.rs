//! Rule 7: the namespace's ResourceQuotas hold the grown total.

use super::{Ctx, Denial, Rule, RuleResult};
use crate::{
    facts::{PvcView, QuotaView},
    quantity::Quantity,
};

const REQUESTS_STORAGE: &str = "requests.storage";
const CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/requests.storage";

/// For a quota resource that limits storage requests: `Some(None)` for the namespace total,
/// `Some(Some(class))` for one StorageClass; `None` for any other resource.
fn storage_limit(resource: &str) -> Option<Option<&str>> {
    if resource == REQUESTS_STORAGE {
        Some(None)
    } else {
        resource.strip_suffix(CLASS_SUFFIX).map(Some)
    }
}

/// Whether rule 7 reads the namespace's other PVCs: only when a quota limits storage requests.
/// Otherwise the database's own PVCs are all the rules need (callers may list just those).
pub fn quotas_need_namespace_pvcs(quotas: &[QuotaView]) -> bool {
    quotas
        .iter()
        .any(|q| q.hard.keys().any(|k| storage_limit(k).is_some()))
}

/// What a PVC counts against quota, in nano-units: max(spec request, status.allocatedResources).
fn charged(pvc: &PvcView) -> i128 {
    let n = |q: &Option<crate::facts::QuantityText>| q.as_ref().and_then(|q| q.nanos()).unwrap_or(0);
    n(&pvc.request).max(n(&pvc.allocated))
}

/// Rule 7: for every quota on `requests.storage` or a class's `requests.storage`, the usage
/// after growing the database's PVCs to the target stays within the hard limit.
pub(crate) fn check_quotas(ctx: &Ctx<'_>) -> RuleResult {
    let facts = ctx.facts;
    let Some(target) = ctx.target.as_ref().map(Quantity::nanos) else {
        return Ok(Vec::new());
    };
    judge(
        &facts.request.namespace,
        &facts.quotas,
        &facts.namespace_pvcs,
        ctx.db_pvcs(),
        target,
    )
}

/// Rule 7 for `growing` (PVCs of namespace `ns`, among `namespace_pvcs`) growing to `target`
/// nano-units. Sums are kept in nano-units; quantities are written out only for a denial.
pub(crate) fn judge(
    ns: &str,
    quotas: &[QuotaView],
    namespace_pvcs: &[PvcView],
    growing: &[&PvcView],
    target: i128,
) -> RuleResult {
    for quota in quotas {
        for (resource, hard_text) in &quota.hard {
            let Some(class_filter) = storage_limit(resource) else {
                continue;
            };
            let Ok(hard) = Quantity::nanos_of(hard_text) else {
                continue;
            };
            let counts = |p: &PvcView| class_filter.is_none_or(|c| p.storage_class.as_deref() == Some(c));
            // The namespace's usage now, plus what growing the PVCs adds to it.
            let used = namespace_pvcs
                .iter()
                .filter(|p| counts(p))
                .fold(0i128, |sum, p| Quantity::add_nanos(sum, charged(p)));
            let added = growing.iter().filter(|p| counts(p)).fold(0i128, |sum, p| {
                let now = charged(p);
                Quantity::add_nanos(sum, now.max(target) - now)
            });
            let grown = Quantity::add_nanos(used, added);
            if grown > used && grown > hard {
                let (used, grown) = (Quantity::from_nanos(used), Quantity::from_nanos(grown));
                return Err(Denial::new(
                    Rule::Quota,
                    format!(
                        "ResourceQuota {ns}/{} would be exceeded: {resource} would grow from {used} to {grown}, above \
                         its limit of {hard_text}; ask for a smaller size or have the quota raised",
                        quota.name
                    ),
                ));
            }
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_quotas_need_the_namespace_pvcs() {
        let quota = |keys: &[&str]| QuotaView {
            name: "q".into(),
            hard: keys
                .iter()
                .map(|k| ((*k).to_owned(), "10Gi".to_owned()))
                .collect(),
        };
        assert!(!quotas_need_namespace_pvcs(&[]));
        assert!(!quotas_need_namespace_pvcs(&[quota(&["pods", "requests.cpu"])]));
        assert!(quotas_need_namespace_pvcs(&[
            quota(&["pods"]),
            quota(&["requests.storage"])
        ]));
        assert!(quotas_need_namespace_pvcs(&[quota(&[
            "fast.storageclass.storage.k8s.io/requests.storage"
        ])]));
        assert!(!quotas_need_namespace_pvcs(&[quota(&[
            "fast.storageclass.storage.k8s.io/persistentvolumeclaims"
        ])]));
    }
}
