//! Rule 8: every VolumeExpansionPolicy that selects the namespace holds, for an ops request and
//! for storage growing outside one alike. A policy that cannot be enforced (a size that is not a
//! quantity, a selector the API server would refuse) is never skipped: it is refused when
//! written, and one already stored denies what it may apply to (fail closed).

use std::collections::BTreeMap;

use super::{Ctx, Denial, Rule, RuleResult, size::current_in};
use crate::{
    api::{
        VolumeExpansionMode,
        policy::{Enforcement, VolumeExpansionPolicySpec},
    },
    duration,
    facts::PolicyView,
    quantity::Quantity,
    selector,
};
use kube::core::SelectorExt as _;

/// What grows, as a policy judges it.
pub(crate) struct Growth<'a> {
    pub(crate) target: &'a Quantity,
    /// The size now and where it was read (for the message), when known.
    pub(crate) current: Option<(Quantity, String)>,
    /// Growth outside an ops request happens in place: Online.
    pub(crate) mode: VolumeExpansionMode,
    /// StorageClasses of the volumes that grow.
    pub(crate) classes: Vec<&'a str>,
}

/// `maxIncrease` as a limit for growing from `current`, or why it cannot be one.
pub(crate) fn increase_limit(limit: &str, current: &Quantity) -> Result<Quantity, String> {
    match limit.strip_suffix('%') {
        Some(pct) => pct.parse::<u32>().map(|p| current.percent(p)).map_err(|_| {
            format!(
                "spec.maxIncrease {limit:?} is not a percent: write a whole number of percent such as 50%"
            )
        }),
        None => match Quantity::parse(limit) {
            Ok(q) if q.nanos() < 0 => Err(format!("spec.maxIncrease {limit:?} must not be negative")),
            Ok(q) => Ok(q),
            Err(e) => Err(format!(
                "spec.maxIncrease {limit:?} is neither a quantity ({e}) nor a percent of the current size; \
                 write one such as 10Gi or 50%"
            )),
        },
    }
}

/// What makes a policy one volops cannot enforce; empty when it can be.
pub fn policy_problems(spec: &VolumeExpansionPolicySpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(max) = &spec.max_size {
        match Quantity::parse(&max.0) {
            Ok(q) if q.nanos() < 0 => out.push(format!("spec.maxSize {:?} must not be negative", max.0)),
            Ok(_) => {}
            Err(e) => out.push(format!(
                "spec.maxSize {:?} is not a quantity ({e}); write one such as 100Gi",
                max.0
            )),
        }
    }
    if let Some(limit) = spec.max_increase.as_deref()
        && let Err(e) = increase_limit(limit, &Quantity::from_nanos(0))
    {
        out.push(e);
    }
    if let Some(sel) = &spec.namespace_selector {
        out.extend(selector::problems(sel, "spec.namespaceSelector"));
    }
    if spec.allowed_storage_classes.iter().any(String::is_empty) {
        out.push("spec.allowedStorageClasses must not hold an empty name".to_owned());
    }
    out.extend(autoscaler_limit_problems(spec));
    out
}

/// What makes the autoscaler's limits of a policy unenforceable: an interval that is not a Go
/// duration, a class named twice or not at all, a threshold that is no percent.
fn autoscaler_limit_problems(spec: &VolumeExpansionPolicySpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(interval) = spec.min_expansion_interval.as_deref()
        && let Err(e) = duration::parse(interval)
    {
        out.push(format!("spec.minExpansionInterval: {e}"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, entry) in spec.storage_class_intervals.iter().enumerate() {
        let at = format!("spec.storageClassIntervals[{i}]");
        if entry.storage_class_name.is_empty() {
            out.push(format!("{at}.storageClassName must not be empty"));
        } else if !seen.insert(entry.storage_class_name.as_str()) {
            out.push(format!(
                "{at}: StorageClass {:?} is listed twice; keep one entry",
                entry.storage_class_name
            ));
        }
        if let Err(e) = duration::parse(&entry.min_expansion_interval) {
            out.push(format!("{at}.minExpansionInterval: {e}"));
        }
    }
    if let Some(t) = spec.emergency_usage_threshold
        && !(1..=100).contains(&t)
    {
        out.push(format!(
            "spec.emergencyUsageThreshold {t} is not a percent from 1 to 100"
        ));
    }
    out
}

/// Refuses a policy (on CREATE or UPDATE) that volops could not enforce.
pub fn validate_policy(name: &str, spec: &VolumeExpansionPolicySpec) -> Result<(), Denial> {
    let problems = policy_problems(spec);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Denial::new(
        Rule::InvalidPolicy,
        format!(
            "VolumeExpansionPolicy {name:?} cannot be enforced: {}",
            problems.join("; ")
        ),
    ))
}

/// Whether a policy applies in a namespace with `labels`: its selector selects it, or the
/// selector is invalid (then nobody can tell, and the policy must not be skipped).
pub fn policy_applies(spec: &VolumeExpansionPolicySpec, labels: &BTreeMap<String, String>) -> bool {
    spec.namespace_selector
        .as_ref()
        .is_none_or(|s| match selector::parse(s, "spec.namespaceSelector") {
            Ok(valid) => valid.matches(labels),
            Err(_) => true,
        })
}

/// The first way a valid `spec` is broken by `growth`, if any.
fn violation(spec: &VolumeExpansionPolicySpec, growth: &Growth<'_>) -> Option<String> {
    let target = growth.target;
    if let Some(max) = spec.max_size.as_ref().and_then(|m| Quantity::parse(&m.0).ok())
        && *target > max
    {
        return Some(format!(
            "{target} is above its maxSize of {max}; ask for at most {max}"
        ));
    }
    if let (Some(limit), Some((current, source))) = (spec.max_increase.as_deref(), &growth.current)
        && let Ok(allowed) = increase_limit(limit, current)
    {
        let increase = target.sub(current);
        if increase > allowed {
            return Some(format!(
                "growing from {current} ({source}) to {target} adds {increase}, above its maxIncrease of {limit} \
                 ({allowed}); grow in smaller steps"
            ));
        }
    }
    if !spec.allowed_modes.is_empty() && !spec.allowed_modes.contains(&growth.mode) {
        let allowed: Vec<&str> = spec.allowed_modes.iter().map(|m| m.as_str()).collect();
        return Some(format!(
            "mode {} is not allowed (allowedModes: {})",
            growth.mode.as_str(),
            allowed.join(", ")
        ));
    }
    if !spec.allowed_storage_classes.is_empty()
        && let Some(bad) = growth
            .classes
            .iter()
            .find(|c| !spec.allowed_storage_classes.iter().any(|a| a == *c))
    {
        return Some(format!(
            "StorageClass {bad:?} is not allowed (allowedStorageClasses: {})",
            spec.allowed_storage_classes.join(", ")
        ));
    }
    None
}

/// Every policy of `policies` that applies in a namespace with `labels`, judged on `growth`
/// (`subject` names it in a denial, e.g. "this request"): a broken `Deny` policy denies, a
/// broken `Warn` one warns; one that cannot be enforced does the same with its problems.
pub(crate) fn judge(
    policies: &[PolicyView],
    labels: &BTreeMap<String, String>,
    growth: &Growth<'_>,
    subject: &str,
) -> RuleResult {
    let mut warnings = Vec::new();
    let mut applying: Vec<&PolicyView> = policies
        .iter()
        .filter(|p| policy_applies(&p.spec, labels))
        .collect();
    applying.sort_by(|a, b| a.name.cmp(&b.name));
    for policy in applying {
        let problems = policy_problems(&policy.spec);
        let why = if problems.is_empty() {
            match violation(&policy.spec, growth) {
                Some(why) => why,
                None => continue,
            }
        } else {
            format!(
                "it cannot be enforced ({}), so it holds back every expansion it may apply to until it is fixed",
                problems.join("; ")
            )
        };
        match policy.spec.enforcement {
            Enforcement::Deny => {
                return Err(Denial::new(
                    Rule::Policy,
                    format!("VolumeExpansionPolicy {:?} denies {subject}: {why}", policy.name),
                ));
            }
            Enforcement::Warn => {
                warnings.push(format!("VolumeExpansionPolicy {:?} (Warn): {why}", policy.name))
            }
        }
    }
    Ok(warnings)
}

/// The StorageClasses of the database's volumes (its own class before it has a PVC).
pub(crate) fn classes_of<'a>(ctx: &Ctx<'a>) -> Vec<&'a str> {
    let mut classes: Vec<&str> = ctx
        .db_pvcs()
        .iter()
        .filter_map(|p| p.storage_class.as_deref())
        .collect();
    if classes.is_empty() {
        classes.extend(
            ctx.facts
                .database
                .as_ref()
                .and_then(|d| d.storage_class.as_deref()),
        );
    }
    classes
}

/// Rule 8 for the database of `ctx` growing to its target; `subject` names what grows.
pub(crate) fn check_growth(ctx: &Ctx<'_>, subject: &str) -> RuleResult {
    let facts = ctx.facts;
    let Some(target) = ctx.target.as_ref().filter(|_| !facts.policies.is_empty()) else {
        return Ok(Vec::new());
    };
    // The current size (a walk over the database's PVCs) only when a limit is relative to it.
    let relative = facts.policies.iter().any(|p| p.spec.max_increase.is_some());
    let growth = Growth {
        target,
        current: current_in(facts, ctx.db_pvcs())
            .filter(|_| relative)
            .map(|(q, source)| (q, source.describe(facts))),
        mode: facts.request.valid_mode().unwrap_or_default(),
        classes: classes_of(ctx),
    };
    judge(&facts.policies, &facts.namespace_labels, &growth, subject)
}

/// Rule 8 for an ops request.
pub(crate) fn check_policies(ctx: &Ctx<'_>) -> RuleResult {
    check_growth(ctx, "this request")
}
