//! Every branch of the decision, table-driven: one base case (a 10Gi Redis at 85% with the
//! docs' section), each row changes one input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use super::growth::{GIB, Step, choose_step, parse_step, round_up_gib};
use super::*;
use crate::api::{ApplyPolicy, AutoscalerOpsRequestOptions, StorageScalingRule, VolumeExpansionMode};

const NOW: &str = "2026-06-01T12:00:00Z";

fn at(offset_secs: i64) -> Timestamp {
    let now: Timestamp = NOW.parse().unwrap();
    now.checked_add(jiff::SignedDuration::from_secs(offset_secs))
        .unwrap()
}

fn gib(n: i128) -> i128 {
    n * GIB
}

/// The inputs of one case, owned (the decision borrows them).
#[derive(Clone)]
struct Case {
    section: StorageAutoscalerSpec,
    options: AutoscalerOpsRequestOptions,
    samples: Vec<VolumeUsage>,
    current: CurrentSize,
    history: ExpansionHistory,
    limits: PolicyLimits,
    now: Timestamp,
}

fn sample(pvc: &str, used_pct: i128, capacity: i128, age_secs: i64) -> VolumeUsage {
    VolumeUsage {
        pvc: pvc.into(),
        capacity_bytes: capacity,
        used_bytes: (capacity * used_pct + 99) / 100,
        sampled_at: at(-age_secs),
    }
}

/// A 10Gi volume pair at 85% and 40%, threshold 80, growth 50%, nothing else in the way.
fn base() -> Case {
    Case {
        section: StorageAutoscalerSpec {
            trigger: Some("On".into()),
            usage_threshold: Some(80),
            scaling_threshold: Some(50),
            expansion_mode: Some(VolumeExpansionMode::Online),
            ..Default::default()
        },
        options: AutoscalerOpsRequestOptions::default(),
        samples: vec![
            sample("data-rd-0", 85, gib(10), 30),
            sample("data-rd-1", 40, gib(10), 30),
        ],
        current: CurrentSize {
            capacity_bytes: Some(gib(10)),
            request_bytes: Some(gib(10)),
        },
        history: ExpansionHistory::default(),
        limits: PolicyLimits::default(),
        now: at(0),
    }
}

fn run(c: &Case) -> Decision {
    decide(&AutoscaleInput {
        section: &c.section,
        options: &c.options,
        samples: &c.samples,
        current: c.current,
        history: &c.history,
        limits: &c.limits,
        now: c.now,
    })
}

fn expansion(c: &Case) -> Expansion {
    match run(c) {
        Decision::Expand(e) => *e,
        other => panic!("expected an expansion, got {other:?}"),
    }
}

fn rules(list: &[(&str, &str)]) -> Option<Vec<StorageScalingRule>> {
    Some(
        list.iter()
            .map(|(upto, t)| StorageScalingRule {
                applies_upto: (*upto).into(),
                threshold: (*t).into(),
                ..Default::default()
            })
            .collect(),
    )
}

fn ceiling(bytes: i128, source: &str) -> Ceiling {
    Ceiling {
        bytes,
        source: source.into(),
    }
}

#[test]
fn sizes_follow_the_rule_for_the_real_capacity_rounded_up_to_a_gib() {
    // (rules, capacity GiB, expected size, expected step)
    let rows: &[(Option<Vec<StorageScalingRule>>, i128, &str, &str)] = &[
        (None, 10, "15Gi", "scalingThreshold 50"),
        (
            rules(&[("", "30pc")]),
            10,
            "13Gi",
            "scalingRules[0] (appliesUpto any size, threshold 30pc)",
        ),
        (
            rules(&[("", "25%")]),
            10,
            "13Gi",
            "scalingRules[0] (appliesUpto any size, threshold 25%)",
        ),
        (
            rules(&[("", "5Gi")]),
            10,
            "15Gi",
            "scalingRules[0] (appliesUpto any size, threshold 5Gi)",
        ),
        (
            rules(&[("", "500Mi")]),
            10,
            "11Gi",
            "scalingRules[0] (appliesUpto any size, threshold 500Mi)",
        ),
        // appliesUpto picks the smallest bound at or above the size, in any order; the open rule
        // takes the rest.
        (
            rules(&[("", "1Gi"), ("100Gi", "10pc"), ("20Gi", "30pc")]),
            10,
            "13Gi",
            "scalingRules[2] (appliesUpto 20Gi, threshold 30pc)",
        ),
        (
            rules(&[("", "1Gi"), ("100Gi", "10pc"), ("20Gi", "30pc")]),
            20,
            "26Gi",
            "scalingRules[2] (appliesUpto 20Gi, threshold 30pc)",
        ),
        (
            rules(&[("", "1Gi"), ("100Gi", "10pc"), ("20Gi", "30pc")]),
            21,
            "24Gi",
            "scalingRules[1] (appliesUpto 100Gi, threshold 10pc)",
        ),
        (
            rules(&[("", "1Gi"), ("100Gi", "10pc"), ("20Gi", "30pc")]),
            200,
            "201Gi",
            "scalingRules[0] (appliesUpto any size, threshold 1Gi)",
        ),
        // No rule for the size and no open one: scalingThreshold.
        (rules(&[("20Gi", "30pc")]), 30, "45Gi", "scalingThreshold 50"),
    ];
    for (rules, cap, size, step) in rows {
        let mut c = base();
        c.section.scaling_rules = rules.clone();
        c.current.capacity_bytes = Some(gib(*cap));
        c.current.request_bytes = Some(gib(*cap));
        for s in &mut c.samples {
            s.capacity_bytes = gib(*cap);
            s.used_bytes = gib(*cap) * 85 / 100;
        }
        let e = expansion(&c);
        assert_eq!(
            (e.size.as_str(), e.step.as_str()),
            (*size, *step),
            "{rules:?} at {cap}Gi"
        );
        assert_eq!(e.from_bytes, gib(*cap));
        assert!(e.clamp.is_none());
    }
}

#[test]
fn growth_is_from_the_capacity_not_the_request_and_rounds_up() {
    // 1.5Gi real capacity (a volume sized in Mi), +50% = 2.25Gi -> 3Gi.
    let mut c = base();
    c.current = CurrentSize {
        capacity_bytes: Some(gib(3) / 2),
        request_bytes: Some(gib(1)),
    };
    let e = expansion(&c);
    assert_eq!(e.size.as_str(), "3Gi");
    assert_eq!(e.from_bytes, gib(3) / 2);
    assert_eq!(round_up_gib(gib(2)), gib(2));
    assert_eq!(round_up_gib(gib(2) + 1), gib(3));
}

#[test]
fn the_threshold_is_crossed_at_or_above_it_by_the_fullest_volume() {
    let rows = [(79, false), (80, true), (100, true)];
    for (pct, expands) in rows {
        let mut c = base();
        c.samples[0] = sample("data-rd-0", pct, gib(10), 30);
        match run(&c) {
            Decision::Expand(e) => {
                assert!(expands, "{pct}%");
                assert_eq!((e.peak.pvc.as_str(), e.peak.percent), ("data-rd-0", pct as i32));
            }
            Decision::NoAction(NoAction::BelowThreshold { peak, threshold }) => {
                assert!(!expands, "{pct}%");
                assert_eq!((peak.percent, threshold), (pct as i32, 80));
            }
            other => panic!("{pct}%: {other:?}"),
        }
    }
    // Unset thresholds are KubeDB's defaults (80).
    let mut c = base();
    c.section.usage_threshold = None;
    c.samples[0] = sample("data-rd-0", 79, gib(10), 30);
    assert!(matches!(
        run(&c),
        Decision::NoAction(NoAction::BelowThreshold { threshold: 80, .. })
    ));
}

#[test]
fn upper_bound_and_policy_limits_clamp_and_say_which() {
    let mut c = base();
    c.section.upper_bound = Some(K8sQuantity("12Gi".into()));
    let e = expansion(&c);
    assert_eq!(e.size.as_str(), "12Gi");
    let clamp = e.clamp.unwrap();
    assert_eq!(
        (clamp.wanted.as_str(), clamp.limit.source.as_str()),
        ("15Gi", "upperBound 12Gi")
    );

    // The lowest limit wins, and a limit between GiB is asked for exactly.
    c.limits.ceilings = vec![
        ceiling(gib(14), "VolumeExpansionPolicy \"a\" maxSize 14Gi"),
        ceiling(
            gib(23) / 2,
            "VolumeExpansionPolicy \"b\" maxIncrease 15% from 10Gi",
        ),
    ];
    let e = expansion(&c);
    assert_eq!(e.size.as_str(), "11776Mi");
    assert_eq!(
        e.clamp.unwrap().limit.source,
        "VolumeExpansionPolicy \"b\" maxIncrease 15% from 10Gi"
    );

    // A limit above the wanted size is no clamp.
    let mut c = base();
    c.limits.ceilings = vec![ceiling(gib(100), "VolumeExpansionPolicy \"a\" maxSize 100Gi")];
    assert!(expansion(&c).clamp.is_none());
}

#[test]
fn at_a_limit_the_database_is_blocked_not_grown() {
    for (bound, policy) in [(Some("10Gi"), None), (Some("8Gi"), None), (None, Some(gib(10)))] {
        let mut c = base();
        c.section.upper_bound = bound.map(|b| K8sQuantity(b.into()));
        c.limits.ceilings = policy
            .map(|b| ceiling(b, "VolumeExpansionPolicy \"p\" maxSize 10Gi"))
            .into_iter()
            .collect();
        match run(&c) {
            Decision::Blocked(Blocked::AtLimit { limit, peak }) => {
                assert_eq!(peak.percent, 85);
                assert!(limit.bytes <= gib(10), "{limit:?}");
            }
            other => panic!("{bound:?} {policy:?}: {other:?}"),
        }
    }
}

#[test]
fn emergency_runs_with_apply_always_else_the_autoscalers_apply() {
    let mut c = base();
    c.limits.emergency_threshold = Some((
        90,
        "VolumeExpansionPolicy \"p\" emergencyUsageThreshold 90".into(),
    ));
    let e = expansion(&c);
    assert_eq!((e.apply, e.emergency), (ApplyPolicy::IfReady, false));
    c.samples[0] = sample("data-rd-0", 95, gib(10), 30);
    let e = expansion(&c);
    assert_eq!((e.apply, e.emergency), (ApplyPolicy::Always, true));
    // The options pass through.
    let mut c = base();
    c.options = AutoscalerOpsRequestOptions {
        timeout: Some("30m".into()),
        apply: Some(ApplyPolicy::Always),
        max_retries: Some(3),
        ..Default::default()
    };
    c.section.expansion_mode = Some(VolumeExpansionMode::Offline);
    let e = expansion(&c);
    assert_eq!(
        (e.apply, e.timeout.as_deref(), e.max_retries, e.mode),
        (
            ApplyPolicy::Always,
            Some("30m"),
            Some(3),
            VolumeExpansionMode::Offline
        )
    );
}

#[test]
fn one_request_at_a_time() {
    let mut c = base();
    c.history.active_request = Some("rdops-rd-abc".into());
    assert_eq!(
        run(&c),
        Decision::Wait {
            reason: WaitReason::RequestActive {
                name: "rdops-rd-abc".into()
            },
            until: None
        }
    );
}

#[test]
fn no_decision_on_a_sample_older_than_the_last_expansion() {
    let mut c = base();
    c.history.last_finished_at = Some(at(-10));
    // Both samples are 30 s old: taken before the expansion finished 10 s ago.
    assert_eq!(
        run(&c),
        Decision::Wait {
            reason: WaitReason::StaleSamples {
                last_finished_at: at(-10)
            },
            until: None
        }
    );
    // A fresh sample of the full volume decides; the stale one of the other is not read.
    c.samples.push(sample("data-rd-0", 50, gib(15), 5));
    c.samples.remove(0);
    assert!(matches!(
        run(&c),
        Decision::NoAction(NoAction::BelowThreshold { .. })
    ));
    // No samples at all.
    c.samples.clear();
    assert_eq!(
        run(&c),
        Decision::Wait {
            reason: WaitReason::NoSamples,
            until: None
        }
    );
}

#[test]
fn a_resize_under_way_is_waited_for() {
    let mut c = base();
    c.current.request_bytes = Some(gib(12));
    assert!(matches!(
        run(&c),
        Decision::Wait {
            reason: WaitReason::ResizePending { .. },
            until: None
        }
    ));
}

#[test]
fn the_policys_minimum_interval_is_kept() {
    let mut c = base();
    let six_hours = Duration::from_secs(6 * 3600);
    c.limits.min_interval = Some((
        six_hours,
        "VolumeExpansionPolicy \"ebs\" storageClassIntervals[gp3] 6h".into(),
    ));
    c.history.last_finished_at = Some(at(-3600));
    for s in &mut c.samples {
        s.sampled_at = at(-60);
    }
    assert_eq!(
        run(&c),
        Decision::Wait {
            reason: WaitReason::MinInterval {
                interval: six_hours,
                source: "VolumeExpansionPolicy \"ebs\" storageClassIntervals[gp3] 6h".into()
            },
            until: Some(at(5 * 3600))
        }
    );
    // Even in an emergency: the provider's limit holds.
    c.limits.emergency_threshold = Some((81, "p".into()));
    assert!(matches!(
        run(&c),
        Decision::Wait {
            reason: WaitReason::MinInterval { .. },
            ..
        }
    ));
    c.now = at(5 * 3600);
    assert!(matches!(run(&c), Decision::Expand(_)));
}

#[test]
fn a_failed_expansion_backs_off_exponentially_up_to_a_cap() {
    assert_eq!(
        [1, 2, 3, 7, 8, 40].map(|n| backoff(n).as_secs() / 60),
        [15, 30, 60, 960, 1440, 1440]
    );
    let mut c = base();
    c.history.last_finished_at = Some(at(-1800));
    c.history.failures = Some(Failures {
        last_failed_at: at(-1800),
        consecutive: 3,
    });
    for s in &mut c.samples {
        s.sampled_at = at(-60);
    }
    assert_eq!(
        run(&c),
        Decision::Wait {
            reason: WaitReason::FailedBackoff {
                failures: 3,
                last_failed_at: at(-1800)
            },
            until: Some(at(1800))
        }
    );
    c.now = at(1800);
    assert!(matches!(run(&c), Decision::Expand(_)));
}

#[test]
fn off_forbidden_and_unusable_sections_are_reported() {
    let mut c = base();
    c.section.trigger = Some("Off".into());
    assert_eq!(run(&c), Decision::NoAction(NoAction::TriggerOff));
    c.section.trigger = None;
    assert_eq!(run(&c), Decision::NoAction(NoAction::TriggerOff));

    let mut c = base();
    c.limits.forbidden = vec!["VolumeExpansionPolicy \"p\" does not allow mode Online".into()];
    assert!(matches!(run(&c), Decision::Blocked(Blocked::Forbidden { reasons }) if reasons.len() == 1));

    let mut c = base();
    c.section.expansion_mode = None;
    assert_eq!(
        run(&c),
        Decision::Blocked(Blocked::InvalidSpec("expansionMode is required".into()))
    );
    let mut c = base();
    c.section.scaling_rules = rules(&[("", "lots")]);
    assert!(
        matches!(run(&c), Decision::Blocked(Blocked::InvalidSpec(m)) if m.starts_with("scalingRules[0]: threshold \"lots\""))
    );
}

#[test]
fn thresholds_parse_as_kubedb_writes_them() {
    assert_eq!(parse_step("30pc"), Ok(Step::Percent(30)));
    assert_eq!(parse_step("20%"), Ok(Step::Percent(20)));
    assert_eq!(parse_step("50Gi"), Ok(Step::Bytes(gib(50))));
    assert_eq!(parse_step("1G"), Ok(Step::Bytes(1_000_000_000)));
    for bad in ["", "pc", "0pc", "-5%", "+5%", "5.5pc", "x%", "0", "-1Gi", "ten"] {
        assert!(parse_step(bad).is_err(), "{bad}");
    }
    let spec = StorageAutoscalerSpec {
        scaling_rules: rules(&[("soon", "30pc")]),
        ..Default::default()
    };
    assert!(
        choose_step(&spec, gib(1))
            .unwrap_err()
            .contains("appliesUpto \"soon\" is not a quantity")
    );
}
