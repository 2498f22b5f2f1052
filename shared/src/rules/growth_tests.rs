//! Storage growing outside an ops request: a database's `spec.storage` edited, a PVC's request
//! edited; denied under `--direct-growth deny` for a database, judged by the rules otherwise.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use super::fixtures::{facts, pvc, quota};
use super::{
    PvcGrowth, Rule, Verdict, database_edit, pvc_database, validate_database_update, validate_pvc_growth,
};
use crate::{
    api::policy::{Enforcement, VolumeExpansionPolicySpec},
    descriptor::DatabaseKind,
    facts::{DirectGrowth, Facts, PolicyView, RuleOptions},
};

fn within_policy() -> RuleOptions {
    RuleOptions {
        direct_growth: DirectGrowth::WithinPolicy,
        ..RuleOptions::default()
    }
}

fn policy(name: &str, spec: VolumeExpansionPolicySpec) -> PolicyView {
    PolicyView {
        name: name.into(),
        spec,
    }
}

fn max_size(size: &str) -> VolumeExpansionPolicySpec {
    VolumeExpansionPolicySpec {
        max_size: Some(K8sQuantity(size.into())),
        ..Default::default()
    }
}

/// The database `rd` (spec 1Gi, four 1Gi PVCs) edited from `before` to `after`.
fn edit(before: &str, after: &str, options: RuleOptions) -> Facts {
    let mut f = facts(after);
    f.request = database_edit("demo", "rd", after);
    if let Some(db) = f.database.as_mut() {
        db.storage_request = Some(before.into());
    }
    f.options = options;
    f
}

fn denial(v: Verdict) -> (Rule, String) {
    let d = v
        .denial
        .unwrap_or_else(|| panic!("expected a denial, got {:?}", v.warnings));
    (d.rule, d.message)
}

#[test]
fn a_database_edit_that_shrinks_below_its_volumes_is_denied() {
    let f = edit("2Gi", "1Gi", RuleOptions::default());
    let mut small = f.clone();
    small.request = database_edit("demo", "rd", "512Mi");
    assert_eq!(
        denial(validate_database_update(&small, Some("2Gi"))),
        (
            Rule::DatabaseShrink,
            "spec.storage.resources.requests.storage of Redis demo/rd cannot shrink from 2Gi to 512Mi: volumes can \
             only grow; to grow them, create a RedisOpsRequest with spec.type VolumeExpansion"
                .into()
        )
    );
    // Back down to what the volumes have (after a bypass raised the spec): allowed.
    assert!(validate_database_update(&f, Some("2Gi")).allowed());
    assert!(validate_database_update(&edit("500Ti", "1Gi", RuleOptions::default()), Some("500Ti")).allowed());
    // Before any PVC exists the old spec is the size: lowering it is a shrink.
    let mut fresh = edit("2Gi", "1Gi", RuleOptions::default());
    fresh.namespace_pvcs.clear();
    assert_eq!(
        denial(validate_database_update(&fresh, Some("2Gi"))).0,
        Rule::DatabaseShrink
    );
    // The same value written otherwise, and other edits (no size change), pass.
    assert!(validate_database_update(&edit("1Gi", "1024Mi", RuleOptions::default()), Some("1Gi")).allowed());
}

#[test]
fn growing_a_database_spec_is_denied_by_default() {
    let f = edit("1Gi", "500Ti", RuleOptions::default());
    assert_eq!(
        denial(validate_database_update(&f, Some("1Gi"))),
        (
            Rule::DirectGrowth,
            "spec.storage.resources.requests.storage of Redis demo/rd cannot grow from 1Gi (largest PVC \
             data-rd-shard0-0) to 500Ti by editing the database: an edit grows none of its volumes; create a \
             RedisOpsRequest with spec.type VolumeExpansion instead (this cluster denies direct growth: volops \
             webhook --direct-growth deny)"
                .into()
        )
    );
    // The spec said less than the volumes have: raising it to their size grows nothing.
    let mut behind = edit("1Gi", "2Gi", RuleOptions::default());
    for p in behind.namespace_pvcs.iter_mut() {
        p.capacity = Some("2Gi".into());
        p.request = Some("2Gi".into());
    }
    assert!(validate_database_update(&behind, Some("1Gi")).allowed());
}

#[test]
fn growing_a_database_spec_within_policy_is_judged_from_its_volumes() {
    let mut f = edit("1Gi", "500Ti", within_policy());
    f.policies = vec![policy("cap", max_size("3Gi"))];
    assert_eq!(
        denial(validate_database_update(&f, Some("1Gi"))),
        (
            Rule::Policy,
            "VolumeExpansionPolicy \"cap\" denies growing spec.storage.resources.requests.storage of Redis demo/rd \
             to 500Ti: 500Ti is above its maxSize of 3Gi; ask for at most 3Gi"
                .into()
        )
    );
    f.request = database_edit("demo", "rd", "3Gi");
    assert!(validate_database_update(&f, Some("1Gi")).allowed());

    // A spec raised to 500Ti by a bypass: maxIncrease counts from the volumes (1Gi), not 500Ti.
    let mut bypassed = edit("500Ti", "600Ti", within_policy());
    bypassed.policies = vec![policy(
        "steps",
        VolumeExpansionPolicySpec {
            max_increase: Some("100%".into()),
            ..Default::default()
        },
    )];
    assert_eq!(
        denial(validate_database_update(&bypassed, Some("500Ti"))).1,
        "VolumeExpansionPolicy \"steps\" denies growing spec.storage.resources.requests.storage of Redis demo/rd to \
         600Ti: growing from 1Gi (largest PVC data-rd-shard0-0) to 600Ti adds 614399Gi, above its maxIncrease of \
         100% (1Gi); grow in smaller steps"
    );

    // Quotas and StorageClasses as for an ops request: every volume grows to the new size.
    let mut quoted = edit("1Gi", "3Gi", within_policy());
    quoted.quotas = vec![quota("storage", &[("requests.storage", "10Gi")])];
    assert_eq!(
        denial(validate_database_update(&quoted, Some("1Gi"))).1,
        "ResourceQuota demo/storage would be exceeded: requests.storage would grow from 4Gi to 12Gi, above its \
         limit of 10Gi; ask for a smaller size or have the quota raised"
    );
    let mut fixed = edit("1Gi", "2Gi", within_policy());
    fixed.namespace_pvcs[0].storage_class = Some("fixed".into());
    assert_eq!(
        denial(validate_database_update(&fixed, Some("1Gi"))).0,
        Rule::StorageClass
    );
}

/// PVC `data-rd-shard0-0` of `rd` (1Gi) edited to `size`.
fn pvc_edit(size: &str, options: RuleOptions) -> PvcGrowth {
    let f = facts("2Gi");
    PvcGrowth {
        namespace: "demo".into(),
        pvc: f.namespace_pvcs[0].clone(),
        requested: size.into(),
        namespace_pvcs: f.namespace_pvcs.clone(),
        quotas: Vec::new(),
        namespace_labels: f.namespace_labels.clone(),
        policies: Vec::new(),
        options,
    }
}

#[test]
fn growing_a_database_pvc_directly_is_denied_by_default() {
    let g = pvc_edit("50Gi", RuleOptions::default());
    assert_eq!(pvc_database(&g.pvc), Some((DatabaseKind::Redis, "rd")));
    assert_eq!(
        denial(validate_pvc_growth(&g)),
        (
            Rule::DirectGrowth,
            "PVC demo/data-rd-shard0-0 of Redis demo/rd cannot grow from 1Gi to 50Gi by editing it: the volumes of a \
             database grow only through a RedisOpsRequest with spec.type VolumeExpansion, which also updates its \
             workloads and spec.storage (this cluster denies direct growth: volops webhook --direct-growth deny)"
                .into()
        )
    );
    // Not growing: nothing to judge (the API server refuses a shrink itself).
    assert!(validate_pvc_growth(&pvc_edit("1Gi", RuleOptions::default())).allowed());
    assert!(validate_pvc_growth(&pvc_edit("512Mi", RuleOptions::default())).allowed());
}

#[test]
fn other_pvcs_and_within_policy_growth_are_judged_by_the_policies_and_quotas() {
    let mut g = pvc_edit("50Gi", within_policy());
    assert!(validate_pvc_growth(&g).allowed());
    g.policies = vec![policy("cap", max_size("3Gi"))];
    assert_eq!(
        denial(validate_pvc_growth(&g)),
        (
            Rule::Policy,
            "VolumeExpansionPolicy \"cap\" denies growing PVC demo/data-rd-shard0-0 directly: 50Gi is above its \
             maxSize of 3Gi; ask for at most 3Gi"
                .into()
        )
    );
    // A PVC of no database is judged the same way under the default (deny) too.
    let mut other = pvc_edit("50Gi", RuleOptions::default());
    other.pvc = pvc("scratch", "none", "1Gi");
    other.pvc.owner = None;
    other.policies = g.policies.clone();
    assert_eq!(pvc_database(&other.pvc), None);
    assert!(denial(validate_pvc_growth(&other)).1.starts_with(
        "VolumeExpansionPolicy \"cap\" denies growing PVC demo/scratch directly: 50Gi is above its maxSize"
    ));
    // maxIncrease counts from the capacity, the real size, not a request already raised.
    let mut steps = pvc_edit("3Gi", within_policy());
    steps.pvc.request = Some("2Gi".into());
    steps.policies = vec![policy(
        "steps",
        VolumeExpansionPolicySpec {
            max_increase: Some("1Gi".into()),
            ..Default::default()
        },
    )];
    assert_eq!(
        denial(validate_pvc_growth(&steps)).1,
        "VolumeExpansionPolicy \"steps\" denies growing PVC demo/data-rd-shard0-0 directly: growing from 1Gi \
         (capacity of PVC demo/data-rd-shard0-0) to 3Gi adds 2Gi, above its maxIncrease of 1Gi (1Gi); grow in \
         smaller steps"
    );
    // Warn policies warn; quotas count the one PVC that grows.
    let mut soft = pvc_edit("4Gi", within_policy());
    soft.policies = vec![policy(
        "soft",
        VolumeExpansionPolicySpec {
            enforcement: Enforcement::Warn,
            ..max_size("3Gi")
        },
    )];
    soft.quotas = vec![quota("storage", &[("requests.storage", "7Gi")])];
    let v = validate_pvc_growth(&soft);
    assert!(v.allowed(), "{v:?}");
    assert_eq!(
        v.warnings,
        ["VolumeExpansionPolicy \"soft\" (Warn): 4Gi is above its maxSize of 3Gi; ask for at most 3Gi"]
    );
    soft.quotas = vec![quota("storage", &[("requests.storage", "6Gi")])];
    assert_eq!(
        denial(validate_pvc_growth(&soft)).1,
        "ResourceQuota demo/storage would be exceeded: requests.storage would grow from 4Gi to 7Gi, above its limit \
         of 6Gi; ask for a smaller size or have the quota raised"
    );
}

#[test]
fn with_kubedb_owning_volume_expansion_its_growth_is_judged_not_denied() {
    // KubeDB's ops-manager grows the PVCs and spec.storage itself (README.md, "Other ops types, and one owner per request").
    let kubedb = || RuleOptions {
        volume_expansion_owner: crate::facts::VolumeExpansionOwner::Kubedb,
        ..RuleOptions::default()
    };
    assert!(validate_pvc_growth(&pvc_edit("50Gi", kubedb())).allowed());
    assert!(validate_database_update(&edit("1Gi", "2Gi", kubedb()), Some("1Gi")).allowed());
    let mut g = pvc_edit("50Gi", kubedb());
    g.policies = vec![policy("cap", max_size("3Gi"))];
    assert_eq!(denial(validate_pvc_growth(&g)).0, Rule::Policy);
}
