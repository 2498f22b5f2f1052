use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;
use volops_shared::api::Condition;

use super::*;
use crate::steps::cleanup::Problem;
use volops_shared::api::{RedisOpsRequest, ZooKeeperOpsRequest};

fn job(kind: &str) -> Job {
    let body = json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": kind,
        "metadata": {"name": "grow", "namespace": "demo", "generation": 1, "uid": "u"},
        "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "db"},
                 "volumeExpansion": {"mode": "Offline", "node": "2Gi", "redis": "2Gi"}}});
    match kind {
        "RedisOpsRequest" => Job::from_request(&serde_json::from_value::<RedisOpsRequest>(body).unwrap()),
        _ => Job::from_request(&serde_json::from_value::<ZooKeeperOpsRequest>(body).unwrap()),
    }
    .unwrap()
}

fn at(secs: i64) -> Time {
    Time(jiff::Timestamp::from_second(secs).unwrap())
}

fn done(type_: &str, message: &str) -> Condition {
    condition(type_, c::TRUE, type_, message, Some(1), at(1))
}

fn step_events(job: &Job, step: Step, conditions: &[Condition]) -> Vec<(&'static str, String)> {
    super::step_events(job, step, conditions)
        .into_iter()
        .map(|(reason, _, note)| (reason, note))
        .collect()
}

#[test]
fn finished_steps_emit_kubedbs_event_reasons_and_texts() {
    let zk = job("ZooKeeperOpsRequest");
    // Each Starting/Successful event has its own action, so none folds into another.
    let end = [
        done(c::RESUME_DATABASE, "resumed"),
        done(c::SUCCESSFUL, "completed"),
    ];
    let actions: Vec<(&str, &str)> = super::step_events(&zk, Step::ResumeDatabase, &end)
        .into_iter()
        .map(|(reason, action, _)| (reason, action))
        .collect();
    assert_eq!(
        actions,
        [
            ("Starting", "ResumeDatabase"),
            ("Successful", "ResumeDatabase"),
            ("Successful", "Successful")
        ]
    );
    assert_eq!(
        step_events(&zk, Step::Admit, &[]),
        vec![(
            "Starting",
            "Start processing for ZooKeeperOpsRequest: demo/grow".to_owned()
        )]
    );
    // volops's own Queued condition has no event.
    let queued = condition("Queued", c::FALSE, "Queued", "started", Some(1), at(1));
    assert_eq!(step_events(&zk, Step::Admit, &[queued]).len(), 1);
    let paused = done(c::PAUSE_DATABASE, "Successfully paused ...");
    assert_eq!(
        step_events(&zk, Step::PauseDatabase, &[paused]),
        vec![("Successful", "Successfully paused ...".to_owned())]
    );
    let recreated = [
        done(
            c::UPDATE_PETSETS,
            "successfully reconciled the ZooKeeper resources",
        ),
        done(c::READY_PETSETS, "PetSet is recreated"),
    ];
    let reasons: Vec<&str> = step_events(&zk, Step::RecreateWorkloads, &recreated)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(reasons, ["UpdatePetSets", "ReadyPetSets"]);
    let end = [
        done(c::RESUME_DATABASE, "Successfully resumed ..."),
        done(
            c::SUCCESSFUL,
            "Successfully completed volumeExpansion for ZooKeeper",
        ),
    ];
    assert_eq!(
        step_events(&zk, Step::ResumeDatabase, &end),
        vec![
            ("Starting", "Resuming ZooKeeper database: demo/db".to_owned()),
            ("Successful", "Successfully resumed ...".to_owned()),
            (
                "Successful",
                "Successfully completed volumeExpansion for ZooKeeper".to_owned()
            ),
        ]
    );
}

#[test]
fn a_failure_has_kubedbs_shape_and_the_cleanup_names_the_step() {
    let mut rd = job("RedisOpsRequest");
    rd.status.phase = Some(OpsRequestPhase::Progressing);
    rd.status.conditions = vec![done(c::VOLUME_EXPANSION, "started")];
    for cond in failure_conditions(&rd, "Expand", "PVC data-db-0: Infeasible", at(9)) {
        c::replace(&mut rd.status.conditions, cond);
    }
    let ve = c::find(&rd.status.conditions, c::VOLUME_EXPANSION).unwrap();
    assert_eq!(
        (ve.status.as_str(), ve.reason.as_deref(), ve.message.as_deref()),
        ("True", Some("Failed"), Some("PVC data-db-0: Infeasible"))
    );
    assert_eq!(ve.observed_generation, Some(1));
    assert!(c::find(&rd.status.conditions, c::FAILED).is_none());
    assert_eq!(crate::decide::next_step(Some(&rd.status)), Step::Cleanup);
    let end = failed_status(&rd, &[], at(20));
    assert_eq!(end.phase, Some(OpsRequestPhase::Failed));
    let cleanup = c::find(&end.conditions, CLEANUP).unwrap();
    assert_eq!(
        (cleanup.status.as_str(), cleanup.reason.as_deref()),
        ("True", Some("Expand"))
    );
    let problems = [Problem {
        object: "Pod demo/db-0".into(),
        message: "forbidden".into(),
        refused: true,
    }];
    let end = failed_status(&rd, &problems, at(20));
    assert_eq!(c::find(&end.conditions, CLEANUP).unwrap().status, "False");
    assert!(c::find(&end.conditions, RESTORE_FAILED).is_some());
}

#[test]
fn a_legacy_failure_ends_in_kubedbs_shape() {
    let mut rd = job("RedisOpsRequest");
    rd.status.phase = Some(OpsRequestPhase::Progressing);
    rd.status.conditions = vec![
        done(c::VOLUME_EXPANSION, "started"),
        condition(c::FAILED, c::TRUE, "Expand", "boom", Some(1), at(5)),
    ];
    let end = failed_status(&rd, &[], at(20));
    assert!(c::find(&end.conditions, c::FAILED).is_none(), "{end:?}");
    let ve = c::find(&end.conditions, c::VOLUME_EXPANSION).unwrap();
    assert_eq!(
        (ve.reason.as_deref(), ve.message.as_deref()),
        (Some("Failed"), Some("boom"))
    );
    assert_eq!(ve.last_transition_time, at(5), "the time of the failure");
    assert_eq!(
        c::find(&end.conditions, CLEANUP).unwrap().reason.as_deref(),
        Some("Expand")
    );
}

/// Requests as the API server stores them, with every status volops writes, pass the guard the
/// controllers watch through as typed requests; only what the types cannot read does not.
#[test]
fn the_watch_guard_reads_every_stored_request_and_flags_only_unreadable_ones() {
    let condition = |t: &str| {
        json!({"type": t, "status": "True", "reason": t, "message": "m",
               "observedGeneration": 3, "lastTransitionTime": "2026-12-05T10:00:00Z"})
    };
    let request = |spec: serde_json::Value, status: serde_json::Value| {
        json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": "RedisOpsRequest",
               "metadata": {"name": "grow", "namespace": "demo", "uid": "u", "generation": 3,
                            "resourceVersion": "7", "finalizers": ["volops.dev/cleanup"],
                            "creationTimestamp": "2026-12-05T10:00:00Z",
                            "annotations": {"a": "b"}, "labels": {"ops.kubedb.com/kind": "RedisOpsRequest"}},
               "spec": spec, "status": status})
    };
    let spec = json!({"type": "VolumeExpansion", "databaseRef": {"name": "rd"}, "timeout": "30s",
                      "apply": "Always", "maxRetries": 2,
                      "volumeExpansion": {"mode": "Offline", "redis": "2Gi"}});
    let conditions: Vec<_> = [
        "ClaimedByVolops",
        "VolumeExpansion",
        "PauseDatabase",
        "OrphanPetSetPods",
        "VolumeExpansionSucceeded",
        "UpdatePetSets",
        "ReadyPetSets",
        "UpdateDatabase",
        "ResumeDatabase",
        "Successful",
        "Cleanup",
        "Queued",
    ]
    .into_iter()
    .map(condition)
    .collect();
    let readable = [
        request(spec.clone(), json!({})),
        request(
            spec.clone(),
            json!({"phase": "Progressing", "observedGeneration": 3, "conditions": conditions}),
        ),
        // KubeDB's int-or-string size as a number, a phase volops does not know, other types.
        request(
            json!({"type": "VolumeExpansion", "databaseRef": {"name": "rd"},
                   "volumeExpansion": {"mode": "Online", "redis": 5368709120_i64}}),
            json!({"phase": "SomethingNew"}),
        ),
        request(
            json!({"type": "VerticalScaling", "databaseRef": {"name": "rd"},
                   "verticalScaling": {"redis": {"resources": {"limits": {"cpu": "1"}}}}}),
            json!({}),
        ),
    ];
    for obj in readable {
        let guard: Watched<RedisOpsRequest> = serde_json::from_value(obj.clone()).unwrap();
        let typed = guard.0.unwrap_or_else(|e| panic!("{e}: {obj}"));
        assert_eq!(typed.metadata.name.as_deref(), Some("grow"));
    }
    let mut past_range = spec;
    past_range["maxRetries"] = json!(3_000_000_000_i64);
    let guard: Watched<RedisOpsRequest> = serde_json::from_value(request(past_range, json!({}))).unwrap();
    let invalid = guard.0.unwrap_err();
    assert_eq!(invalid.metadata.name.as_deref(), Some("grow"));
    assert!(invalid.error.contains("i32"), "{}", invalid.error);
}
