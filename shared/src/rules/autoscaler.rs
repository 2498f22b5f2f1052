//! The rules of a storage autoscaler (docs/ARCHITECTURE.md, "Storage autoscaling"): KubeDB's
//! (a database named and present; a storage section only for the database's mode) plus
//! volops's (thresholds in range, rules that parse, an `expansionMode`, a Go-duration timeout),
//! and the policies' word on it (an `upperBound` above a policy's `maxSize` is a warning).

use std::collections::BTreeMap;

use super::{Denial, Rule, Verdict, policy::policy_applies};
use crate::api::{AutoscalerView, StorageAutoscalerSpec};
use crate::autoscale::growth::{parse_applies_upto, parse_step};
use crate::descriptor::{DatabaseKind, Topology};
use crate::facts::{DatabaseView, PolicyView};
use crate::quantity::Quantity;

/// What the rules decide an autoscaler on.
#[derive(Clone, Copy, Debug)]
pub struct AutoscalerFacts<'a> {
    pub kind: DatabaseKind,
    pub namespace: &'a str,
    pub autoscaler: &'a AutoscalerView,
    /// The database, when it exists.
    pub database: Option<&'a DatabaseView>,
    /// The Redis's `spec.mode` when the caller knows it; without it a Redis's view tells only
    /// Cluster from the other modes.
    pub redis_mode: Option<&'a str>,
    pub policies: &'a [PolicyView],
    pub namespace_labels: &'a BTreeMap<String, String>,
}

/// The storage keys the database's mode allows, and the mode's name for messages.
fn allowed_keys(f: &AutoscalerFacts<'_>, db: &DatabaseView) -> (&'static [&'static str], &'static str) {
    match (f.kind, f.redis_mode, &db.topology) {
        (DatabaseKind::ZooKeeper, _, _) => (&["zookeeper"], "a ZooKeeper ensemble"),
        (_, Some("Cluster"), _) | (_, None, Topology::RedisCluster { .. }) => (&["cluster"], "Cluster mode"),
        (_, Some("Sentinel"), _) => (&["sentinel"], "Sentinel mode"),
        (_, Some(_), _) => (&["standalone"], "Standalone mode"),
        (_, None, _) => (&["standalone", "sentinel"], "Standalone or Sentinel mode"),
    }
}

fn invalid(message: String) -> Denial {
    Denial::new(Rule::InvalidAutoscaler, message)
}

/// The problems of one section, `at` naming it (`spec.storage.cluster`).
fn section_problems(at: &str, s: &StorageAutoscalerSpec) -> Vec<String> {
    let mut out = Vec::new();
    if s.expansion_mode.is_none() {
        out.push(format!("{at}.expansionMode is required: Online or Offline"));
    }
    if let Some(t) = s.usage_threshold.filter(|t| !(1..=100).contains(t)) {
        out.push(format!("{at}.usageThreshold {t} is not a percent from 1 to 100"));
    }
    if let Some(t) = s.scaling_threshold.filter(|t| *t < 1) {
        out.push(format!("{at}.scalingThreshold {t} must be a percent above 0"));
    }
    let rules = s.scaling_rules.as_deref().unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        let errors = [
            parse_applies_upto(&rule.applies_upto).err(),
            parse_step(&rule.threshold).err(),
        ];
        out.extend(
            errors
                .into_iter()
                .flatten()
                .map(|e| format!("{at}.scalingRules[{i}]: {e}")),
        );
    }
    if rules.iter().filter(|r| r.applies_upto.is_empty()).count() > 1 {
        out.push(format!(
            "{at}.scalingRules has more than one rule with an empty appliesUpto; keep one for sizes above the others"
        ));
    }
    if let Some(bound) = &s.upper_bound
        && !Quantity::parse(&bound.0).is_ok_and(|q| q.is_positive())
    {
        out.push(format!("{at}.upperBound {:?} is not a quantity above 0", bound.0));
    }
    out
}

/// Warnings on one section: a trigger that is neither On nor Off, an `upperBound` the volumes
/// already reach, one above a policy's `maxSize`.
fn section_warnings(f: &AutoscalerFacts<'_>, at: &str, s: &StorageAutoscalerSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = s.trigger.as_deref().filter(|t| !matches!(*t, "On" | "Off")) {
        out.push(format!(
            "{at}.trigger {t:?} is neither On nor Off: the autoscaler stays off"
        ));
    }
    let Some(bound) = s.upper_bound.as_ref().and_then(|b| Quantity::parse(&b.0).ok()) else {
        return out;
    };
    let size = f
        .database
        .and_then(|d| d.storage_request.as_deref())
        .and_then(|r| Quantity::parse(r).ok());
    if let Some(size) = size.filter(|size| bound <= *size) {
        out.push(format!(
            "{at}.upperBound {bound} is not above the database's size {size}: the autoscaler will not grow it"
        ));
    }
    let mut policies: Vec<&PolicyView> = f
        .policies
        .iter()
        .filter(|p| policy_applies(&p.spec, f.namespace_labels))
        .collect();
    policies.sort_by(|a, b| a.name.cmp(&b.name));
    for p in policies {
        if let Some(max) = p.spec.max_size.as_ref().and_then(|m| Quantity::parse(&m.0).ok())
            && bound > max
        {
            out.push(format!(
                "{at}.upperBound {bound} is above the maxSize {max} of VolumeExpansionPolicy {:?}: the autoscaler \
                 grows the volumes to {max} at most",
                p.name
            ));
        }
    }
    out
}

/// Every rule of an autoscaler's CREATE or UPDATE; the first denial wins.
pub fn validate_autoscaler(f: &AutoscalerFacts<'_>) -> Verdict {
    let a = f.autoscaler;
    let Some(db) = f.database else {
        return Verdict::deny(
            Denial::new(
                Rule::DatabaseMissing,
                format!(
                    "{} {}/{} does not exist: create it before its autoscaler",
                    f.kind.kind(),
                    f.namespace,
                    a.database
                ),
            ),
            Vec::new(),
        );
    };
    let (keys, mode) = allowed_keys(f, db);
    if let Some((key, _)) = a.sections.iter().find(|(k, _)| !keys.contains(k)) {
        let message = format!(
            "spec.storage.{key} is invalid for {} {}/{} in {mode}; use spec.storage.{}",
            f.kind.kind(),
            f.namespace,
            a.database,
            keys.join(" or spec.storage.")
        );
        return Verdict::deny(invalid(message), Vec::new());
    }
    let mut problems: Vec<String> = a
        .sections
        .iter()
        .flat_map(|(k, s)| section_problems(&format!("spec.storage.{k}"), s))
        .collect();
    if let Some(Err(e)) = a.options.timeout.as_deref().map(crate::duration::parse) {
        problems.push(format!("spec.opsRequestOptions.timeout: {e}"));
    }
    if let Some(r) = a.options.max_retries.filter(|r| *r < 0) {
        problems.push(format!(
            "spec.opsRequestOptions.maxRetries {r} must not be negative"
        ));
    }
    if !problems.is_empty() {
        return Verdict::deny(invalid(problems.join("; ")), Vec::new());
    }
    let warnings = a
        .sections
        .iter()
        .flat_map(|(k, s)| section_warnings(f, &format!("spec.storage.{k}"), s))
        .collect();
    Verdict::allow(warnings)
}
