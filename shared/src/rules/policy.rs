//! Rule 8: every VolumeExpansionPolicy that selects the namespace holds.

use super::{Ctx, Denial, Rule, RuleResult, size::current_in};
use crate::{api::policy::Enforcement, facts::PolicyView, quantity::Quantity, selector};

/// The first way `policy` is broken by the request, if any.
fn violation(ctx: &Ctx<'_>, policy: &PolicyView) -> Option<String> {
    let facts = ctx.facts;
    let spec = &policy.spec;
    let target = ctx.target.as_ref()?;
    if let Some(max) = spec.max_size.as_ref().and_then(|m| Quantity::parse(&m.0).ok())
        && *target > max
    {
        return Some(format!(
            "{target} is above its maxSize of {max}; ask for at most {max}"
        ));
    }
    if let (Some(limit), Some((current, _))) =
        (spec.max_increase.as_deref(), current_in(facts, ctx.db_pvcs()))
    {
        let allowed = match limit.strip_suffix('%') {
            Some(pct) => pct.parse::<u32>().ok().map(|p| current.percent(p)),
            None => Quantity::parse(limit).ok(),
        };
        let increase = target.sub(&current);
        if let Some(allowed) = allowed
            && increase > allowed
        {
            return Some(format!(
                "growing from {current} to {target} adds {increase}, above its maxIncrease of {limit} ({allowed}); \
                 grow in smaller steps"
            ));
        }
    }
    if !spec.allowed_modes.is_empty() {
        let mode = facts.request.mode.as_deref().unwrap_or("Online");
        if !spec.allowed_modes.iter().any(|m| m.as_str() == mode) {
            let allowed: Vec<&str> = spec.allowed_modes.iter().map(|m| m.as_str()).collect();
            return Some(format!(
                "mode {mode} is not allowed (allowedModes: {})",
                allowed.join(", ")
            ));
        }
    }
    if !spec.allowed_storage_classes.is_empty() {
        let mut classes: Vec<&str> = ctx
            .db_pvcs()
            .iter()
            .filter_map(|p| p.storage_class.as_deref())
            .collect();
        if classes.is_empty() {
            classes.extend(facts.database.as_ref().and_then(|d| d.storage_class.as_deref()));
        }
        if let Some(bad) = classes
            .iter()
            .find(|c| !spec.allowed_storage_classes.iter().any(|a| a == *c))
        {
            return Some(format!(
                "StorageClass {bad:?} is not allowed (allowedStorageClasses: {})",
                spec.allowed_storage_classes.join(", ")
            ));
        }
    }
    None
}

/// Rule 8: a `Deny` policy that is broken denies; a `Warn` policy becomes a warning.
pub(crate) fn check_policies(ctx: &Ctx<'_>) -> RuleResult {
    let facts = ctx.facts;
    let mut warnings = Vec::new();
    let mut policies: Vec<&PolicyView> = facts
        .policies
        .iter()
        .filter(|p| {
            p.spec
                .namespace_selector
                .as_ref()
                .is_none_or(|s| selector::matches(s, &facts.namespace_labels))
        })
        .collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    for policy in policies {
        let Some(why) = violation(ctx, policy) else {
            continue;
        };
        match policy.spec.enforcement {
            Enforcement::Deny => {
                return Err(Denial::new(
                    Rule::Policy,
                    format!(
                        "VolumeExpansionPolicy {:?} denies this request: {why}",
                        policy.name
                    ),
                ));
            }
            Enforcement::Warn => {
                warnings.push(format!("VolumeExpansionPolicy {:?} (Warn): {why}", policy.name))
            }
        }
    }
    Ok(warnings)
}
