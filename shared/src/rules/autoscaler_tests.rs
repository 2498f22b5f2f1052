//! The autoscaler's rules, the policies' limits on it, and the policy fields they read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;

use super::fixtures::facts;
use super::*;
use crate::api::{
    AutoscalerView, Enforcement, StorageClassInterval, VolumeExpansionMode, VolumeExpansionPolicySpec,
    autoscaler_view,
};
use crate::descriptor::{DatabaseKind, Topology};
use crate::facts::{DatabaseView, PolicyView};

fn view(kind: DatabaseKind, storage: serde_json::Value) -> AutoscalerView {
    autoscaler_view(
        kind,
        &json!({"spec": {"databaseRef": {"name": "rd"}, "storage": storage}}),
    )
    .unwrap()
}

fn section(extra: serde_json::Value) -> serde_json::Value {
    let mut s = json!({"trigger": "On", "expansionMode": "Online"});
    s.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s
}

fn policy(name: &str, spec: VolumeExpansionPolicySpec) -> PolicyView {
    PolicyView {
        name: name.into(),
        spec,
    }
}

/// Checks `autoscaler` against the cluster Redis `rd` of the rule fixtures.
fn check(
    autoscaler: &AutoscalerView,
    db: Option<&DatabaseView>,
    mode: Option<&str>,
    policies: &[PolicyView],
) -> Verdict {
    let labels = facts("1Gi").namespace_labels;
    validate_autoscaler(&AutoscalerFacts {
        kind: DatabaseKind::Redis,
        namespace: "demo",
        autoscaler,
        database: db,
        redis_mode: mode,
        policies,
        namespace_labels: &labels,
    })
}

fn cluster_db() -> DatabaseView {
    facts("1Gi").database.unwrap()
}

fn single_db() -> DatabaseView {
    DatabaseView {
        topology: Topology::RedisSingle { replicas: 1 },
        ..cluster_db()
    }
}

#[test]
fn the_storage_key_must_match_the_redis_mode() {
    let cluster = cluster_db();
    let single = single_db();
    // (key, database, known mode, allowed)
    let rows = [
        ("cluster", &cluster, None, true),
        ("standalone", &cluster, None, false),
        ("sentinel", &cluster, None, false),
        ("standalone", &single, None, true),
        ("sentinel", &single, None, true),
        ("cluster", &single, None, false),
        ("standalone", &single, Some("Standalone"), true),
        ("sentinel", &single, Some("Standalone"), false),
        ("sentinel", &single, Some("Sentinel"), true),
        ("standalone", &single, Some("Sentinel"), false),
    ];
    for (key, db, mode, allowed) in rows {
        let a = view(DatabaseKind::Redis, json!({key: section(json!({}))}));
        let v = check(&a, Some(db), mode, &[]);
        assert_eq!(v.allowed(), allowed, "{key} on {:?} {mode:?}: {v:?}", db.topology);
    }
    let a = view(DatabaseKind::Redis, json!({"standalone": section(json!({}))}));
    let d = check(&a, Some(&cluster), None, &[]).denial.unwrap();
    assert_eq!(
        (d.rule, d.message.as_str()),
        (
            Rule::InvalidAutoscaler,
            "spec.storage.standalone is invalid for Redis demo/rd in Cluster mode; use spec.storage.cluster"
        )
    );
    // No storage section at all (compute only) is KubeDB's too.
    assert!(check(&view(DatabaseKind::Redis, json!({})), Some(&cluster), None, &[]).allowed());
}

#[test]
fn a_missing_database_or_reference_is_refused() {
    let a = view(DatabaseKind::Redis, json!({"cluster": section(json!({}))}));
    let d = check(&a, None, None, &[]).denial.unwrap();
    assert_eq!(
        (d.rule, d.message.as_str()),
        (
            Rule::DatabaseMissing,
            "Redis demo/rd does not exist: create it before its autoscaler"
        )
    );
    for spec in [
        json!({}),
        json!({"databaseRef": {}}),
        json!({"databaseRef": {"name": ""}}),
    ] {
        let e = autoscaler_view(DatabaseKind::ZooKeeper, &json!({"spec": spec})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.databaseRef.name is required: name the ZooKeeper to scale"
        );
    }
}

#[test]
fn thresholds_rules_and_options_are_checked_with_every_problem_named() {
    let a = view(
        DatabaseKind::Redis,
        json!({"cluster": {"trigger": "On", "usageThreshold": 0, "scalingThreshold": -5, "upperBound": "-1Gi",
                           "scalingRules": [{"appliesUpto": "", "threshold": "30pc"}, {"appliesUpto": "", "threshold": "1Gi"},
                                            {"appliesUpto": "lots", "threshold": "0%"}]}}),
    );
    let d = check(&a, Some(&cluster_db()), None, &[]).denial.unwrap();
    assert_eq!(d.rule, Rule::InvalidAutoscaler);
    assert_eq!(
        d.message,
        "spec.storage.cluster.expansionMode is required: Online or Offline; spec.storage.cluster.usageThreshold 0 \
         is not a percent from 1 to 100; spec.storage.cluster.scalingThreshold -5 must be a percent above 0; \
         spec.storage.cluster.scalingRules[2]: appliesUpto \"lots\" is not a quantity (quantities must match the \
         regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'); write one such as 500Gi, or leave it \
         empty; spec.storage.cluster.scalingRules[2]: threshold \"0%\" is not a percent: write a whole number above \
         0 such as 30pc or 20%; spec.storage.cluster.scalingRules has more than one rule with an empty appliesUpto; \
         keep one for sizes above the others; spec.storage.cluster.upperBound \"-1Gi\" is not a quantity above 0"
    );
    let mut a = view(
        DatabaseKind::Redis,
        json!({"cluster": section(json!({"usageThreshold": 101}))}),
    );
    assert!(
        check(&a, Some(&cluster_db()), None, &[])
            .message()
            .unwrap()
            .contains("usageThreshold 101")
    );
    a.sections[0].1.usage_threshold = Some(100);
    a.options.timeout = Some("300".into());
    assert_eq!(
        check(&a, Some(&cluster_db()), None, &[]).message(),
        Some(
            "spec.opsRequestOptions.timeout: time: invalid duration \"300\"; write it like 5m, 90s or 1h30m"
        )
    );
}

#[test]
fn upper_bound_above_a_policys_max_size_and_odd_triggers_warn() {
    let max = |size: &str, enforcement| VolumeExpansionPolicySpec {
        max_size: Some(K8sQuantity(size.into())),
        enforcement,
        ..Default::default()
    };
    let other_tenant = VolumeExpansionPolicySpec {
        namespace_selector: Some(LabelSelector {
            match_labels: Some([("tenant".to_string(), "b".to_string())].into()),
            match_expressions: None,
        }),
        ..max("1Gi", Enforcement::Deny)
    };
    let policies = [
        policy("b-soft", max("50Gi", Enforcement::Warn)),
        policy("a-hard", max("20Gi", Enforcement::Deny)),
        policy("c-roomy", max("500Gi", Enforcement::Deny)),
        policy("other", other_tenant),
    ];
    let a = view(
        DatabaseKind::Redis,
        json!({"cluster": section(json!({"upperBound": "100Gi", "trigger": "on"}))}),
    );
    let v = check(&a, Some(&cluster_db()), None, &policies);
    assert_eq!(
        v,
        Verdict::allow(vec![
            "spec.storage.cluster.trigger \"on\" is neither On nor Off: the autoscaler stays off".into(),
            "spec.storage.cluster.upperBound 100Gi is above the maxSize 20Gi of VolumeExpansionPolicy \"a-hard\": the \
             autoscaler grows the volumes to 20Gi at most"
                .into(),
            "spec.storage.cluster.upperBound 100Gi is above the maxSize 50Gi of VolumeExpansionPolicy \"b-soft\": the \
             autoscaler grows the volumes to 50Gi at most"
                .into(),
        ])
    );
    let a = view(
        DatabaseKind::Redis,
        json!({"cluster": section(json!({"upperBound": "1Gi"}))}),
    );
    assert_eq!(
        check(&a, Some(&cluster_db()), None, &[]).warnings,
        [
            "spec.storage.cluster.upperBound 1Gi is not above the database's size 1Gi: the autoscaler will not grow it"
        ]
    );
}

fn limits(
    policies: &[PolicyView],
    classes: &[&str],
    mode: VolumeExpansionMode,
) -> crate::autoscale::PolicyLimits {
    let labels = BTreeMap::from([("tenant".to_string(), "a".to_string())]);
    autoscale_limits(
        policies,
        &AutoscaledDatabase {
            namespace_labels: &labels,
            classes,
            current_bytes: 10 << 30,
            mode,
        },
    )
}

#[test]
fn policy_limits_for_the_autoscaler() {
    let ebs = VolumeExpansionPolicySpec {
        max_size: Some(K8sQuantity("100Gi".into())),
        max_increase: Some("50%".into()),
        min_expansion_interval: Some("1h".into()),
        storage_class_intervals: vec![StorageClassInterval {
            storage_class_name: "gp3".into(),
            min_expansion_interval: "6h".into(),
        }],
        emergency_usage_threshold: Some(95),
        ..Default::default()
    };
    let strict = VolumeExpansionPolicySpec {
        emergency_usage_threshold: Some(90),
        allowed_modes: vec![VolumeExpansionMode::Offline],
        allowed_storage_classes: vec!["gp3".into()],
        ..Default::default()
    };
    let policies = [policy("ebs", ebs.clone()), policy("strict", strict.clone())];
    let l = limits(&policies, &["gp3"], VolumeExpansionMode::Offline);
    let ceilings: Vec<(i128, &str)> = l
        .ceilings
        .iter()
        .map(|c| (c.bytes >> 30, c.source.as_str()))
        .collect();
    assert_eq!(
        ceilings,
        [
            (100, "VolumeExpansionPolicy \"ebs\" maxSize 100Gi"),
            (15, "VolumeExpansionPolicy \"ebs\" maxIncrease 50% from 10Gi"),
        ]
    );
    assert_eq!(
        l.min_interval,
        Some((
            Duration::from_secs(6 * 3600),
            "VolumeExpansionPolicy \"ebs\" storageClassIntervals[gp3] 6h".into()
        ))
    );
    assert_eq!(
        l.emergency_threshold,
        Some((
            90,
            "VolumeExpansionPolicy \"strict\" emergencyUsageThreshold 90".into()
        ))
    );
    assert!(l.forbidden.is_empty());
    // Another class takes the policy-wide interval; a Deny policy's modes and classes forbid.
    let l = limits(&policies, &["standard"], VolumeExpansionMode::Online);
    assert_eq!(
        l.min_interval.unwrap().1,
        "VolumeExpansionPolicy \"ebs\" minExpansionInterval 1h"
    );
    assert_eq!(
        l.forbidden,
        [
            "VolumeExpansionPolicy \"strict\" does not allow mode Online",
            "VolumeExpansionPolicy \"strict\" does not allow StorageClass \"standard\""
        ]
    );
    // Warn policies clamp but do not forbid.
    let soft = VolumeExpansionPolicySpec {
        enforcement: Enforcement::Warn,
        ..strict
    };
    let l = limits(
        &[policy("soft", soft)],
        &["standard"],
        VolumeExpansionMode::Online,
    );
    assert!(l.forbidden.is_empty());
    // An unenforceable policy forbids (fail closed).
    let broken = VolumeExpansionPolicySpec {
        min_expansion_interval: Some("6 hours".into()),
        ..Default::default()
    };
    let l = limits(&[policy("broken", broken)], &["gp3"], VolumeExpansionMode::Online);
    assert_eq!(l.forbidden.len(), 1);
    assert!(
        l.forbidden[0]
            .starts_with("VolumeExpansionPolicy \"broken\" cannot be enforced (spec.minExpansionInterval")
    );
}

#[test]
fn a_policy_with_limits_volops_cannot_enforce_is_refused() {
    let spec = VolumeExpansionPolicySpec {
        min_expansion_interval: Some("-1h".into()),
        storage_class_intervals: vec![
            StorageClassInterval {
                storage_class_name: "gp3".into(),
                min_expansion_interval: "6h".into(),
            },
            StorageClassInterval {
                storage_class_name: "gp3".into(),
                min_expansion_interval: "6".into(),
            },
            StorageClassInterval {
                storage_class_name: String::new(),
                min_expansion_interval: "1h".into(),
            },
        ],
        emergency_usage_threshold: Some(0),
        ..Default::default()
    };
    let d = validate_policy("limits", &spec).unwrap_err();
    assert_eq!(d.rule, Rule::InvalidPolicy);
    assert_eq!(
        d.message,
        "VolumeExpansionPolicy \"limits\" cannot be enforced: spec.minExpansionInterval: time: invalid duration \
         \"-1h\"; write it like 5m, 90s or 1h30m; spec.storageClassIntervals[1]: StorageClass \"gp3\" is listed \
         twice; keep one entry; spec.storageClassIntervals[1].minExpansionInterval: time: invalid duration \"6\"; \
         write it like 5m, 90s or 1h30m; spec.storageClassIntervals[2].storageClassName must not be empty; \
         spec.emergencyUsageThreshold 0 is not a percent from 1 to 100"
    );
    let ok = VolumeExpansionPolicySpec {
        min_expansion_interval: Some("30m".into()),
        emergency_usage_threshold: Some(95),
        ..Default::default()
    };
    assert_eq!(validate_policy("ok", &ok), Ok(()));
}
