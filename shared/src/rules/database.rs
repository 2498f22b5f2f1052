//! The database UPDATE rule: a direct edit of `spec.storage` must not shrink it below its
//! volumes, and growing it is judged like an ops request (or denied, `--direct-growth deny`).
//!
//! The size the volumes have now is read from the PVCs (their request and capacity), not from
//! the old `spec.storage`: an edit grows no volume, and a spec raised while the webhook was
//! bypassed must not set the bar (it would make every later expansion look like a shrink).

use super::{Ctx, Denial, Rule, Verdict, policy, quota, size::current_in, storage};
use crate::{
    api::{VolumeExpansionMode, ops::VOLUME_EXPANSION},
    facts::{DirectGrowth, Facts, OpsRequestView},
    quantity::Quantity,
};

/// An edit of database `db` in `namespace` to `spec.storage` `size`, as the ops request it
/// stands for (Online: the edit happens in place). [`validate_database_update`] reads it from
/// `Facts::request`.
pub fn database_edit(namespace: &str, db: &str, size: &str) -> OpsRequestView {
    OpsRequestView {
        namespace: namespace.to_owned(),
        name: String::new(),
        type_: Some(VOLUME_EXPANSION.to_owned()),
        database: Some(db.to_owned()),
        mode: Some(Ok(VolumeExpansionMode::Online)),
        size: Some(size.to_owned()),
        phase: None,
        created: None,
    }
}

/// Judges an UPDATE of a database's `spec.storage.resources.requests.storage` from `before`
/// (the old object's, if any) to `facts.request.size` (see [`database_edit`]), with
/// `facts.database` the database as it was and the facts an ops request would have.
pub fn validate_database_update(facts: &Facts, before: Option<&str>) -> Verdict {
    let ctx = Ctx::new(facts);
    let Some(after) = ctx.target.as_ref() else {
        return Verdict::allow(Vec::new());
    };
    let before = before.and_then(|b| Quantity::parse(b).ok());
    let current = current_in(facts, ctx.db_pvcs()).map(|(q, source)| (q, source.describe(facts)));
    let db = format!(
        "{} {}/{}",
        facts.kind.kind(),
        facts.request.namespace,
        facts.request.database.as_deref().unwrap_or_default()
    );
    let field = "spec.storage.resources.requests.storage";
    let below = |limit: Option<&Quantity>| limit.is_some_and(|l| after < l);
    let above = |limit: Option<&Quantity>| limit.is_none_or(|l| after > l);
    // Lowering the spec to what the volumes have (after a bypass) is fine; below them is not.
    if let Some(b) = &before
        && after < b
        && (current.is_none() || below(current.as_ref().map(|(c, _)| c)))
    {
        let why = format!(
            "{field} of {db} cannot shrink from {b} to {after}: volumes can only grow; to grow them, \
             create a {} with spec.type VolumeExpansion",
            facts.kind.ops_kind()
        );
        return Verdict::deny(Denial::new(Rule::DatabaseShrink, why), Vec::new());
    }
    let Some((from, source)) = current.or_else(|| before.clone().map(|b| (b, format!("{field} of {db}"))))
    else {
        return Verdict::allow(Vec::new());
    };
    if !(above(before.as_ref()) && after > &from) {
        return Verdict::allow(Vec::new());
    }
    // KubeDB's ops-manager grows spec.storage when it owns VolumeExpansion: judged by policy.
    if facts.options.direct_growth == DirectGrowth::Deny
        && facts.options.volume_expansion_owner == crate::facts::VolumeExpansionOwner::Volops
    {
        let why = format!(
            "{field} of {db} cannot grow from {from} ({source}) to {after} by editing the database: an edit \
             grows none of its volumes; create a {} with spec.type VolumeExpansion instead (this cluster \
             denies direct growth: volops webhook --direct-growth {})",
            facts.kind.ops_kind(),
            DirectGrowth::Deny.as_str()
        );
        return Verdict::deny(Denial::new(Rule::DirectGrowth, why), Vec::new());
    }
    let subject = format!("growing {field} of {db} to {after}");
    let mut warnings = Vec::new();
    for result in [
        storage::check_classes(&ctx),
        quota::check_quotas(&ctx),
        policy::check_growth(&ctx, &subject),
    ] {
        match result {
            Ok(w) => warnings.extend(w),
            Err(d) => return Verdict::deny(d, warnings),
        }
    }
    Verdict::allow(warnings)
}
