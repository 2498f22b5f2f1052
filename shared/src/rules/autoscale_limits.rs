//! The policies' limits on the autoscaler of one database ([`PolicyLimits`]): every policy
//! that selects the namespace, Deny and Warn alike (an automatic request stays within what the
//! platform asks for), resolved for the database's StorageClasses and current size.

use std::collections::BTreeMap;
use std::time::Duration;

use super::policy::{increase_limit, policy_applies, policy_problems};
use crate::api::{Enforcement, VolumeExpansionMode, VolumeExpansionPolicySpec};
use crate::autoscale::{Ceiling, PolicyLimits};
use crate::duration;
use crate::facts::PolicyView;
use crate::quantity::Quantity;

/// The database an autoscaler grows, as the policies judge it.
#[derive(Clone, Copy, Debug)]
pub struct AutoscaledDatabase<'a> {
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// The StorageClasses of its volumes.
    pub classes: &'a [&'a str],
    /// The size it grows from, in bytes.
    pub current_bytes: i128,
    pub mode: VolumeExpansionMode,
}

/// The policy's minimum interval for volumes of `class`: the class's own entry, else the
/// policy-wide one.
fn interval_for(spec: &VolumeExpansionPolicySpec, class: &str) -> Option<(Duration, String)> {
    let own = spec
        .storage_class_intervals
        .iter()
        .find(|e| e.storage_class_name == class)
        .map(|e| {
            (
                e.min_expansion_interval.as_str(),
                format!("storageClassIntervals[{class}]"),
            )
        });
    let (text, field) = own.or_else(|| {
        spec.min_expansion_interval
            .as_deref()
            .map(|t| (t, "minExpansionInterval".to_owned()))
    })?;
    duration::parse(text).ok().map(|d| (d, format!("{field} {text}")))
}

fn add_ceilings(out: &mut PolicyLimits, p: &PolicyView, db: &AutoscaledDatabase<'_>) {
    let name = &p.name;
    if let Some(max) = p.spec.max_size.as_ref().and_then(|m| Quantity::parse(&m.0).ok()) {
        out.ceilings.push(Ceiling {
            bytes: max.bytes_ceil(),
            source: format!("VolumeExpansionPolicy {name:?} maxSize {max}"),
        });
    }
    if let Some(limit) = p.spec.max_increase.as_deref() {
        let current = Quantity::from_bytes(db.current_bytes);
        if let Ok(allowed) = increase_limit(limit, &current) {
            out.ceilings.push(Ceiling {
                bytes: current.add(&allowed).bytes_ceil(),
                source: format!("VolumeExpansionPolicy {name:?} maxIncrease {limit} from {current}"),
            });
        }
    }
}

fn add_forbidden(out: &mut PolicyLimits, p: &PolicyView, db: &AutoscaledDatabase<'_>) {
    let name = &p.name;
    let problems = policy_problems(&p.spec);
    if !problems.is_empty() {
        out.forbidden.push(format!(
            "VolumeExpansionPolicy {name:?} cannot be enforced ({})",
            problems.join("; ")
        ));
    }
    if p.spec.enforcement != Enforcement::Deny {
        return;
    }
    if !p.spec.allowed_modes.is_empty() && !p.spec.allowed_modes.contains(&db.mode) {
        out.forbidden.push(format!(
            "VolumeExpansionPolicy {name:?} does not allow mode {}",
            db.mode.as_str()
        ));
    }
    let allowed = &p.spec.allowed_storage_classes;
    if let Some(bad) = db
        .classes
        .iter()
        .find(|c| !allowed.is_empty() && !allowed.iter().any(|a| a == *c))
    {
        out.forbidden.push(format!(
            "VolumeExpansionPolicy {name:?} does not allow StorageClass {bad:?}"
        ));
    }
}

/// The limits of every policy of `policies` that selects the database's namespace.
pub fn autoscale_limits(policies: &[PolicyView], db: &AutoscaledDatabase<'_>) -> PolicyLimits {
    let mut out = PolicyLimits::default();
    let mut applying: Vec<&PolicyView> = policies
        .iter()
        .filter(|p| policy_applies(&p.spec, db.namespace_labels))
        .collect();
    applying.sort_by(|a, b| a.name.cmp(&b.name));
    for p in applying {
        add_ceilings(&mut out, p, db);
        add_forbidden(&mut out, p, db);
        let longest = db
            .classes
            .iter()
            .filter_map(|c| interval_for(&p.spec, c))
            .chain(if db.classes.is_empty() {
                interval_for(&p.spec, "")
            } else {
                None
            })
            .max_by_key(|(d, _)| *d);
        if let Some((d, field)) = longest
            && out.min_interval.as_ref().is_none_or(|(m, _)| d > *m)
        {
            out.min_interval = Some((d, format!("VolumeExpansionPolicy {:?} {field}", p.name)));
        }
        if let Some(t) = p.spec.emergency_usage_threshold.filter(|t| (1..=100).contains(t))
            && out.emergency_threshold.as_ref().is_none_or(|(m, _)| t < *m)
        {
            out.emergency_threshold = Some((
                t,
                format!("VolumeExpansionPolicy {:?} emergencyUsageThreshold {t}", p.name),
            ));
        }
    }
    out
}
