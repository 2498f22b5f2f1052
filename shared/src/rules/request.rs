//! Rules 1-3: the request's type, its database, and its size field.

use super::{Ctx, Denial, Rule, RuleResult};
use crate::{
    api::ops::VOLUME_EXPANSION,
    facts::{Facts, OtherTypes, VolumeExpansionOwner},
    quantity::Quantity,
};

pub(crate) enum TypeDecision {
    Handle,
    PassThrough(Vec<String>),
}

/// Rule 1: volops handles `VolumeExpansion` (unless KubeDB owns it); other known types pass
/// through untouched unless `--other-types deny`.
pub(crate) fn check_type(facts: &Facts) -> Result<TypeDecision, Denial> {
    let kind = facts.kind;
    let req = &facts.request;
    let Some(t) = req.type_.as_deref() else {
        return Err(Denial::new(
            Rule::UnsupportedType,
            format!(
                "spec.type is required; set it to {VOLUME_EXPANSION} to grow the volumes of the database"
            ),
        ));
    };
    if t == VOLUME_EXPANSION {
        return Ok(match facts.options.volume_expansion_owner {
            VolumeExpansionOwner::Volops => TypeDecision::Handle,
            VolumeExpansionOwner::Kubedb => TypeDecision::PassThrough(vec![format!(
                "volops leaves {} of type {VOLUME_EXPANSION} to KubeDB's ops-manager \
                 (--volume-expansion-owner kubedb)",
                kind.ops_kind()
            )]),
        });
    }
    if !kind.ops_types().contains(&t) {
        return Err(Denial::new(
            Rule::UnsupportedType,
            format!(
                "spec.type {t:?} is not a {} type; the supported types are {}",
                kind.ops_kind(),
                kind.ops_types().join(", ")
            ),
        ));
    }
    match facts.options.other_types {
        OtherTypes::Pass => Ok(TypeDecision::PassThrough(vec![format!(
            "volops does not handle {} of type {t}; it is left to KubeDB's ops-manager",
            kind.ops_kind()
        )])),
        OtherTypes::Deny => Err(Denial::new(
            Rule::UnsupportedType,
            format!(
                "volops handles only {} of type {VOLUME_EXPANSION}, not {t}, and this cluster denies \
                 the other types (webhook --other-types deny); run {t} where KubeDB's ops-manager \
                 handles it, or ask your cluster admin to pass other types through",
                kind.ops_kind()
            ),
        )),
    }
}

/// Rule 2: the database exists, is Durable, and has `spec.storage`.
pub(crate) fn check_database(ctx: &Ctx<'_>) -> RuleResult {
    let facts = ctx.facts;
    let kind = facts.kind.kind();
    let ns = &facts.request.namespace;
    let Some(name) = facts.request.database.as_deref().filter(|n| !n.is_empty()) else {
        return Err(Denial::new(
            Rule::DatabaseMissing,
            format!(
                "spec.databaseRef.name is required: name the {kind} in namespace {ns} whose volumes should grow"
            ),
        ));
    };
    let Some(db) = &facts.database else {
        return Err(Denial::new(
            Rule::DatabaseMissing,
            format!(
                "{kind} {ns}/{name} not found: spec.databaseRef.name must name a {kind} in namespace {ns}; \
                 create the database first or fix the name"
            ),
        ));
    };
    if facts.kind.has_storage_type() && db.storage_type.as_deref().is_some_and(|t| t != "Durable") {
        return Err(Denial::new(
            Rule::NotDurable,
            format!(
                "{kind} {ns}/{name} has spec.storageType {}: it keeps its data in memory-backed volumes \
                 that cannot be expanded; only Durable databases can be",
                db.storage_type.as_deref().unwrap_or_default()
            ),
        ));
    }
    if !db.has_storage {
        return Err(Denial::new(
            Rule::NoStorage,
            format!("{kind} {ns}/{name} has no spec.storage, so it has no volumes to expand"),
        ));
    }
    Ok(Vec::new())
}

/// Rule 3: the size field is present and a quantity, and the mode is Online or Offline.
pub(crate) fn check_size_field(ctx: &Ctx<'_>) -> RuleResult {
    let facts = ctx.facts;
    let field = || format!("spec.volumeExpansion.{}", facts.kind.size_field());
    let Some(size) = facts.request.size.as_deref() else {
        return Err(Denial::new(
            Rule::SizeField,
            format!(
                "{} is required for a {VOLUME_EXPANSION} {}: set it to the new size of each volume, e.g. 2Gi",
                field(),
                facts.kind.ops_kind()
            ),
        ));
    };
    if let Err(e) = Quantity::nanos_of(size) {
        return Err(Denial::new(
            Rule::SizeField,
            format!(
                "{} {size:?} is not a valid quantity ({e}); write a Kubernetes quantity such as 2Gi or 2G",
                field()
            ),
        ));
    }
    match &facts.request.mode {
        Some(Ok(_)) => Ok(Vec::new()),
        Some(Err(other)) => Err(Denial::new(
            Rule::SizeField,
            format!("spec.volumeExpansion.mode {other:?} is not supported; use Online or Offline"),
        )),
        None => Err(Denial::new(
            Rule::SizeField,
            "spec.volumeExpansion.mode is required; use Online (pods keep running) or Offline (one pod at a time)",
        )),
    }
}
