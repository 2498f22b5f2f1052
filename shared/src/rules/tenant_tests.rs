//! What a tenant writes and volops must not trust: the controller's annotations, a timeout
//! that is not a duration, a policy volops cannot enforce.

use k8s_openapi::apimachinery::pkg::{
    api::resource::Quantity as K8sQuantity,
    apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
};

use super::fixtures::facts;
use super::{
    Rule, is_owned_annotation, policy_applies, validate_create, validate_owned_annotations, validate_policy,
    validate_timeout,
};
use crate::{
    api::policy::{Enforcement, VolumeExpansionPolicySpec},
    facts::PolicyView,
};

#[test]
fn owned_annotations_cannot_be_added_changed_or_removed() {
    const WHAT: &str = "RedisOpsRequest demo/grow";
    let saved = [("volops.dev/workload.statefulset.rd", "H4sI...")];
    assert!(is_owned_annotation("volumeexpansion.ops.kubedb.com/rd-0"));
    assert!(!is_owned_annotation("volops.dev.evil/x") && !is_owned_annotation("example.com/note"));
    // Anything else may change; the owned ones staying as they are is fine.
    assert_eq!(
        validate_owned_annotations(WHAT, &[], &[("example.com/note", "hi")]),
        Ok(())
    );
    assert_eq!(
        validate_owned_annotations(WHAT, &saved, &[saved[0], ("example.com/note", "hi")]),
        Ok(())
    );
    let d =
        validate_owned_annotations(WHAT, &[], &[("volops.dev/workload.statefulset.rd", "x")]).unwrap_err();
    assert_eq!(d.rule, Rule::OwnedAnnotation);
    assert_eq!(
        d.message,
        "RedisOpsRequest demo/grow: annotations under volops.dev/ and volumeexpansion.ops.kubedb.com/ are written \
         only by the volops controller, which keeps what it must restore there (added: \
         volops.dev/workload.statefulset.rd); leave them out of the request"
    );
    let d = validate_owned_annotations(
        WHAT,
        &[saved[0], ("volumeexpansion.ops.kubedb.com/rd-0", "pod")],
        &[
            ("volops.dev/workload.statefulset.rd", "forged"),
            ("volumeexpansion.ops.kubedb.com/other-0", "pod"),
        ],
    )
    .unwrap_err();
    assert!(
        d.message.contains(
            "(added: volumeexpansion.ops.kubedb.com/other-0; changed: volops.dev/workload.statefulset.rd; removed: \
             volumeexpansion.ops.kubedb.com/rd-0)"
        ),
        "{}",
        d.message
    );
    // Many keys: five are named, the rest counted.
    let keys: Vec<String> = (0..8).map(|i| format!("volops.dev/k{i}")).collect();
    let many: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    let d = validate_owned_annotations(WHAT, &[], &many).unwrap_err();
    assert!(
        d.message.contains(
            "(added: volops.dev/k0, volops.dev/k1, volops.dev/k2, volops.dev/k3, volops.dev/k4 and 3 more)"
        ),
        "{}",
        d.message
    );
}

#[test]
fn timeout_must_be_a_go_duration() {
    for ok in [None, Some("300s"), Some("5m"), Some("1h30m"), Some("1.5h")] {
        assert_eq!(validate_timeout(ok), Ok(()), "{ok:?}");
    }
    let d = validate_timeout(Some("300")).unwrap_err();
    assert_eq!(d.rule, Rule::Timeout);
    assert_eq!(
        d.message,
        "spec.timeout \"300\" is not a duration: write a Go duration with its unit, such as 300s for 300 seconds, 5m \
         or 1h30m"
    );
    assert_eq!(
        validate_timeout(Some("five minutes")).unwrap_err().message,
        "spec.timeout \"five minutes\" is not a duration: write a Go duration with its unit, such as 5m or 1h30m"
    );
    assert_eq!(
        validate_timeout(Some("0s")).unwrap_err().message,
        "spec.timeout \"0s\" must be longer than zero: write a Go duration with its unit, such as 5m or 1h30m"
    );
    for bad in ["", "-5m", "5 m", "1d"] {
        assert!(validate_timeout(Some(bad)).is_err(), "{bad:?}");
    }
}

fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    }
}

fn typo_policy() -> VolumeExpansionPolicySpec {
    VolumeExpansionPolicySpec {
        max_size: Some(K8sQuantity("5GB".into())),
        max_increase: Some("10%%".into()),
        namespace_selector: Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("tenant", "exists", &[])]),
        }),
        ..Default::default()
    }
}

#[test]
fn a_policy_that_cannot_be_enforced_is_refused_with_every_problem() {
    assert_eq!(
        validate_policy("ok", &VolumeExpansionPolicySpec::default()),
        Ok(())
    );
    let d = validate_policy("tenant-limits", &typo_policy()).unwrap_err();
    assert_eq!(d.rule, Rule::InvalidPolicy);
    assert_eq!(
        d.message,
        "VolumeExpansionPolicy \"tenant-limits\" cannot be enforced: spec.maxSize \"5GB\" is not a quantity \
         (quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'); write one \
         such as 100Gi; spec.maxIncrease \"10%%\" is not a percent: write a whole number of percent such as 50%; \
         spec.namespaceSelector.matchExpressions[0].operator \"exists\" is not one of In, NotIn, Exists, DoesNotExist"
    );
    let negative = VolumeExpansionPolicySpec {
        max_size: Some(K8sQuantity("-1Gi".into())),
        max_increase: Some("-1Gi".into()),
        allowed_storage_classes: vec![String::new()],
        ..Default::default()
    };
    assert_eq!(
        validate_policy("n", &negative).unwrap_err().message,
        "VolumeExpansionPolicy \"n\" cannot be enforced: spec.maxSize \"-1Gi\" must not be negative; \
         spec.maxIncrease \"-1Gi\" must not be negative; spec.allowedStorageClasses must not hold an empty name"
    );
    let huge = VolumeExpansionPolicySpec {
        max_increase: Some("99999999999%".into()),
        ..Default::default()
    };
    assert!(validate_policy("h", &huge).is_err());
}

#[test]
fn a_stored_policy_that_cannot_be_enforced_denies_fail_closed() {
    let labels = facts("2Gi").namespace_labels;
    // An invalid selector cannot be told to skip the namespace: the policy applies.
    assert!(policy_applies(&typo_policy(), &labels));
    let other_tenant = VolumeExpansionPolicySpec {
        namespace_selector: Some(LabelSelector {
            match_labels: Some([("tenant".to_string(), "b".to_string())].into()),
            match_expressions: None,
        }),
        ..Default::default()
    };
    assert!(!policy_applies(&other_tenant, &labels));

    let mut f = facts("2Gi");
    f.policies = vec![PolicyView {
        name: "tenant-limits".into(),
        spec: typo_policy(),
    }];
    let d = validate_create(&f).denial.unwrap();
    assert_eq!(d.rule, Rule::Policy);
    assert!(
        d.message.starts_with(
            "VolumeExpansionPolicy \"tenant-limits\" denies this request: it cannot be enforced (spec.maxSize \"5GB\" \
             is not a quantity"
        ),
        "{}",
        d.message
    );
    assert!(
        d.message
            .ends_with("), so it holds back every expansion it may apply to until it is fixed"),
        "{}",
        d.message
    );
    // A broken Warn policy warns (it never denies when valid either).
    f.policies[0].spec.enforcement = Enforcement::Warn;
    let v = validate_create(&f);
    assert!(v.allowed());
    assert!(
        v.warnings[0].starts_with("VolumeExpansionPolicy \"tenant-limits\" (Warn): it cannot be enforced")
    );
}
