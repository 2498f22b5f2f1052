//! Rule 7: the namespace's ResourceQuotas hold the grown total.

use super::{Denial, Rule, RuleResult, size::target_size};
use crate::{
    facts::{Facts, PvcView},
    quantity::Quantity,
};

const REQUESTS_STORAGE: &str = "requests.storage";
const CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/requests.storage";

/// What a PVC counts against quota: max(spec request, status.allocatedResources).
fn charged(pvc: &PvcView) -> Quantity {
    let q = |s: Option<&str>| {
        s.and_then(|s| Quantity::parse(s).ok())
            .unwrap_or_else(|| Quantity::from_bytes(0))
    };
    q(pvc.request.as_deref()).max(q(pvc.allocated.as_deref()))
}

/// Rule 7: for every quota on `requests.storage` or a class's `requests.storage`, the usage
/// after growing the database's PVCs to the target stays within the hard limit.
pub(crate) fn check_quotas(facts: &Facts) -> RuleResult {
    let Some(target) = target_size(facts) else {
        return Ok(Vec::new());
    };
    let db_pvcs: Vec<&str> = facts.database_pvcs().iter().map(|p| p.name.as_str()).collect();
    let ns = &facts.request.namespace;
    for quota in &facts.quotas {
        for (resource, hard) in &quota.hard {
            let class_filter: Option<&str> = if resource == REQUESTS_STORAGE {
                None
            } else if let Some(class) = resource.strip_suffix(CLASS_SUFFIX) {
                Some(class)
            } else {
                continue;
            };
            let Ok(hard) = Quantity::parse(hard) else { continue };
            let counted = facts
                .namespace_pvcs
                .iter()
                .filter(|p| class_filter.is_none_or(|c| p.storage_class.as_deref() == Some(c)));
            let mut used = Quantity::from_bytes(0);
            let mut grown = Quantity::from_bytes(0);
            for pvc in counted {
                let now = charged(pvc);
                let after = if db_pvcs.contains(&pvc.name.as_str()) {
                    now.clone().max(target.clone())
                } else {
                    now.clone()
                };
                used = used.add(&now);
                grown = grown.add(&after);
            }
            if grown > used && grown > hard {
                return Err(Denial::new(
                    Rule::Quota,
                    format!(
                        "ResourceQuota {ns}/{} would be exceeded: {resource} would grow from {used} to {grown}, above \
                         its limit of {hard}; ask for a smaller size or have the quota raised",
                        quota.name
                    ),
                ));
            }
        }
    }
    Ok(Vec::new())
}
