//! Table tests: every rule's allow and deny side, every denial message word for word.

use k8s_openapi::apimachinery::pkg::{api::resource::Quantity as K8sQuantity, apis::meta::v1::LabelSelector};
use serde_json::json;

use super::{Rule, fixtures::*, plan_warnings, validate_create, validate_spec_unchanged};
use crate::{
    api::{
        OpsRequestPhase, VolumeExpansionMode,
        policy::{Enforcement, VolumeExpansionPolicySpec},
    },
    descriptor::DatabaseKind,
    facts::{Facts, PolicyView},
    rules::{QueueDecision, decide_queue},
};

fn denied(f: &Facts) -> (Rule, String) {
    let v = validate_create(f);
    let d = v
        .denial
        .unwrap_or_else(|| panic!("expected a denial, got {:?}", v.warnings));
    (d.rule, d.message)
}

fn allowed(f: &Facts) -> Vec<String> {
    let v = validate_create(f);
    assert!(v.allowed(), "expected allow, got {:?}", v.denial);
    v.warnings
}

#[test]
fn a_valid_request_is_allowed_without_warnings() {
    assert!(allowed(&facts("2Gi")).is_empty());
}

#[test]
fn rule1_type() {
    let mut f = facts("2Gi");
    f.request.type_ = Some("Restart".into());
    // Passed through by default.
    assert_eq!(
        allowed(&f),
        ["volops does not handle RedisOpsRequest of type Restart; it is left to KubeDB's ops-manager"]
    );
    f.options.other_types = crate::facts::OtherTypes::Deny;
    assert_eq!(
        denied(&f),
        (
            Rule::UnsupportedType,
            "volops handles only RedisOpsRequest of type VolumeExpansion, not Restart, and this cluster denies \
             the other types (webhook --other-types deny); run Restart where KubeDB's ops-manager \
             handles it, or ask your cluster admin to pass other types through"
                .into()
        )
    );
    f.request.type_ = Some("Explode".into());
    assert_eq!(
        denied(&f).1,
        "spec.type \"Explode\" is not a RedisOpsRequest type; the supported types are UpdateVersion, \
         HorizontalScaling, VerticalScaling, VolumeExpansion, Restart, Reconfigure, ReconfigureTLS, \
         ReplaceSentinel, RotateAuth, Announce, StorageMigration"
    );
    f.request.type_ = None;
    assert_eq!(
        denied(&f).1,
        "spec.type is required; set it to VolumeExpansion to grow the volumes of the database"
    );
    // ZooKeeper has no ReplaceSentinel.
    let mut z = facts("2Gi");
    z.kind = DatabaseKind::ZooKeeper;
    z.request.type_ = Some("ReplaceSentinel".into());
    assert_eq!(denied(&z).0, Rule::UnsupportedType);
    assert!(
        denied(&z)
            .1
            .starts_with("spec.type \"ReplaceSentinel\" is not a ZooKeeperOpsRequest type")
    );
}

#[test]
fn rule2_database() {
    let mut f = facts("2Gi");
    f.database = None;
    assert_eq!(
        denied(&f),
        (
            Rule::DatabaseMissing,
            "Redis demo/rd not found: spec.databaseRef.name must name a Redis in namespace demo; create the \
             database first or fix the name"
                .into()
        )
    );
    f.request.database = None;
    assert_eq!(
        denied(&f).1,
        "spec.databaseRef.name is required: name the Redis in namespace demo whose volumes should grow"
    );

    let mut f = facts("2Gi");
    if let Some(db) = f.database.as_mut() {
        db.storage_type = Some("Ephemeral".into());
    }
    assert_eq!(
        denied(&f),
        (
            Rule::NotDurable,
            "Redis demo/rd has spec.storageType Ephemeral: it keeps its data in memory-backed volumes that cannot \
             be expanded; only Durable databases can be"
                .into()
        )
    );

    let mut f = facts("2Gi");
    if let Some(db) = f.database.as_mut() {
        db.storage_type = None; // KubeDB's default is Durable
        db.has_storage = false;
    }
    assert_eq!(
        denied(&f),
        (
            Rule::NoStorage,
            "Redis demo/rd has no spec.storage, so it has no volumes to expand".into()
        )
    );
}

#[test]
fn rule3_size_and_mode() {
    let mut f = facts("2Gi");
    f.request.size = None;
    assert_eq!(
        denied(&f),
        (
            Rule::SizeField,
            "spec.volumeExpansion.redis is required for a VolumeExpansion RedisOpsRequest: set it to the new size \
             of each volume, e.g. 2Gi"
                .into()
        )
    );
    f.request.size = Some("2GB".into());
    assert_eq!(
        denied(&f).1,
        "spec.volumeExpansion.redis \"2GB\" is not a valid quantity (quantities must match the regular expression \
         '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'); write a Kubernetes quantity such as 2Gi or 2G"
    );
    let mut f = facts("2Gi");
    f.request.mode = Some(Err("Sideways".into()));
    assert_eq!(
        denied(&f).1,
        "spec.volumeExpansion.mode \"Sideways\" is not supported; use Online or Offline"
    );
    f.request.mode = None;
    assert_eq!(
        denied(&f).1,
        "spec.volumeExpansion.mode is required; use Online (pods keep running) or Offline (one pod at a time)"
    );
    let mut z = facts("2Gi");
    z.kind = DatabaseKind::ZooKeeper;
    z.request.size = None;
    z.namespace_pvcs.clear();
    assert!(
        denied(&z)
            .1
            .starts_with("spec.volumeExpansion.node is required for a VolumeExpansion ZooKeeperOpsRequest")
    );
}

#[test]
fn rule4_shrink_and_no_op_are_denied_while_pending() {
    let mut f = facts("1Gi");
    assert_eq!(
        denied(&f),
        (
            Rule::NotGrowing,
            "desired storage 1Gi must be greater than the current 1Gi (largest PVC data-rd-shard0-0); volumes can \
             only grow, so ask for more than 1Gi"
                .into()
        )
    );
    // A PVC that is already bigger than the DB's spec sets the bar.
    f.namespace_pvcs[1].capacity = Some("2Gi".into());
    f.namespace_pvcs[1].request = Some("2Gi".into());
    f.request.size = Some("1536Mi".into());
    assert_eq!(
        denied(&f).1,
        "desired storage 1536Mi must be greater than the current 2Gi (largest PVC data-rd-shard0-1); volumes can \
         only grow, so ask for more than 2Gi"
    );
    // Same value, other spelling: still a no-op.
    f.request.size = Some("2147483648".into());
    assert_eq!(denied(&f).0, Rule::NotGrowing);
    f.request.size = Some("2049Mi".into());
    allowed(&f);
    // Once the request runs, the controller has written the new size into the DB: not checked.
    let mut running = facts("1Gi");
    running.request.phase = Some(OpsRequestPhase::Progressing);
    allowed(&running);
    // Before the database has volumes, its spec.storage is the current size.
    let mut fresh = facts("1Gi");
    fresh.namespace_pvcs.clear();
    assert_eq!(
        denied(&fresh).1,
        "desired storage 1Gi must be greater than the current 1Gi (spec.storage of Redis demo/rd); volumes can \
         only grow, so ask for more than 1Gi"
    );
}

#[test]
fn rule4_a_spec_raised_past_the_volumes_does_not_set_the_bar() {
    // spec.storage edited to 500Ti while the webhook was bypassed: the volumes are still 1Gi,
    // so growing them to 2Gi is growth, not a shrink.
    let mut f = facts("2Gi");
    if let Some(db) = f.database.as_mut() {
        db.storage_request = Some("500Ti".into());
    }
    allowed(&f);
    f.request.size = Some("1Gi".into());
    assert!(
        denied(&f)
            .1
            .contains("than the current 1Gi (largest PVC data-rd-shard0-0)")
    );
}

#[test]
fn rule5_storage_class() {
    let mut f = facts("2Gi");
    f.namespace_pvcs[2].storage_class = Some("fixed".into());
    assert_eq!(
        denied(&f),
        (
            Rule::StorageClass,
            "StorageClass \"fixed\" of PVC data-rd-shard1-0 does not allow volume expansion; ask your cluster admin \
             to set allowVolumeExpansion: true on it (if its driver supports resizing)"
                .into()
        )
    );
    f.namespace_pvcs[2].storage_class = Some("gone".into());
    assert_eq!(
        denied(&f).1,
        "StorageClass \"gone\" of PVC data-rd-shard1-0 does not exist; volumes of a missing class cannot be \
         expanded, so recreate the class (with allowVolumeExpansion: true) first"
    );
    // No class on the PVC: the cluster default (here "fixed", not expandable) applies.
    f.namespace_pvcs[2].storage_class = None;
    assert!(
        denied(&f)
            .1
            .starts_with("StorageClass \"fixed\" of PVC data-rd-shard1-0 does not allow")
    );
    f.storage_classes.retain(|c| c.name != "fixed");
    assert_eq!(
        denied(&f).1,
        "PVC data-rd-shard1-0 has no StorageClass and the cluster has no default one; only dynamically \
         provisioned volumes can be expanded"
    );
    // Before any PVC exists, the database's own class is checked.
    let mut f = facts("2Gi");
    f.namespace_pvcs.clear();
    if let Some(db) = f.database.as_mut() {
        db.storage_class = Some("fixed".into());
    }
    assert!(
        denied(&f)
            .1
            .starts_with("StorageClass \"fixed\" of spec.storage of Redis demo/rd does not allow")
    );
}

#[test]
fn rule6_pvc_state() {
    let mut f = facts("2Gi");
    f.namespace_pvcs[0].phase = Some("Pending".into());
    assert_eq!(
        denied(&f),
        (
            Rule::PvcState,
            "PVC data-rd-shard0-0 is Pending, not Bound; wait until every volume of the database is bound, then retry"
                .into()
        )
    );
    let mut f = facts("3Gi");
    f.namespace_pvcs[3].request = Some("2Gi".into());
    assert_eq!(
        denied(&f).1,
        "PVC data-rd-shard1-1 already has a resize in progress (requested 2Gi, capacity 1Gi); wait until it \
         finishes, then retry"
    );
    let mut f = facts("3Gi");
    f.namespace_pvcs[3].resize_mut().true_conditions = vec!["FileSystemResizePending".into()];
    assert_eq!(denied(&f).0, Rule::PvcState);
    let mut f = facts("3Gi");
    f.namespace_pvcs[3].resize_mut().status = Some("ControllerResizeInProgress".into());
    assert_eq!(denied(&f).0, Rule::PvcState);
    // A resize an earlier volops request of the same database is running queues this one.
    let mut f = facts("3Gi");
    f.namespace_pvcs[3].request = Some("2Gi".into());
    let mut running = request("2Gi");
    running.name = "first".into();
    running.phase = Some(OpsRequestPhase::Progressing);
    running.created = Some("2026-01-01T00:00:01Z".into());
    // Not an earlier request of this database: another database's, one that is over, one of
    // another type.
    let mut elsewhere = running.clone();
    elsewhere.database = Some("rd2".into());
    let mut over = running.clone();
    over.phase = Some(OpsRequestPhase::Successful);
    let mut restart = running.clone();
    restart.type_ = Some("Restart".into());
    f.other_requests = vec![elsewhere, over, restart];
    assert_eq!(denied(&f).0, Rule::PvcState, "a resize by hand is still denied");
    f.other_requests.push(running);
    let w = allowed(&f);
    assert!(
        w.contains(
            &"PVC data-rd-shard1-1 is resizing for RedisOpsRequest demo/first; this request stays Pending \
              until that one is over, and is judged again then"
                .to_owned()
        ),
        "{w:?}"
    );
    // PVCs of other databases do not matter.
    let mut f = facts("2Gi");
    let mut other = pvc("data-other-0", "other", "1Gi");
    other.phase = Some("Pending".into());
    f.namespace_pvcs.push(other);
    allowed(&f);
}

#[test]
fn rule7_quota() {
    // 4 x 1Gi of rd + 1Gi of another DB = 5Gi used; growing rd to 2Gi needs 9Gi.
    let mut f = facts("2Gi");
    f.namespace_pvcs.push(pvc("data-other-0", "other", "1Gi"));
    f.quotas = vec![quota("storage", &[("requests.storage", "8Gi"), ("pods", "10")])];
    assert_eq!(
        denied(&f),
        (
            Rule::Quota,
            "ResourceQuota demo/storage would be exceeded: requests.storage would grow from 5Gi to 9Gi, above its \
             limit of 8Gi; ask for a smaller size or have the quota raised"
                .into()
        )
    );
    f.quotas = vec![quota("storage", &[("requests.storage", "9Gi")])];
    allowed(&f);
    // Per-class quota counts only that class.
    f.namespace_pvcs[4].storage_class = Some("slow".into());
    f.quotas = vec![quota(
        "fast-only",
        &[("fast.storageclass.storage.k8s.io/requests.storage", "7Gi")],
    )];
    assert_eq!(
        denied(&f).1,
        "ResourceQuota demo/fast-only would be exceeded: fast.storageclass.storage.k8s.io/requests.storage would \
         grow from 4Gi to 8Gi, above its limit of 7Gi; ask for a smaller size or have the quota raised"
    );
    f.quotas = vec![quota(
        "slow-only",
        &[("slow.storageclass.storage.k8s.io/requests.storage", "1Gi")],
    )];
    allowed(&f);
    // allocatedResources counts when it is above the request (quota uses the max).
    let mut f = facts("2Gi");
    f.namespace_pvcs.push(pvc("data-other-0", "other", "1Gi"));
    f.namespace_pvcs[4].allocated = Some("3Gi".into());
    f.quotas = vec![quota("storage", &[("requests.storage", "10Gi")])];
    assert!(denied(&f).1.contains("would grow from 7Gi to 11Gi"));
}

fn policy(name: &str, spec: VolumeExpansionPolicySpec) -> PolicyView {
    PolicyView {
        name: name.into(),
        spec,
    }
}

#[test]
fn rule8_policy() {
    let max = |size: &str| VolumeExpansionPolicySpec {
        max_size: Some(K8sQuantity(size.into())),
        ..Default::default()
    };
    let mut f = facts("200Gi");
    f.policies = vec![policy("tenant-limits", max("100Gi"))];
    assert_eq!(
        denied(&f),
        (
            Rule::Policy,
            "VolumeExpansionPolicy \"tenant-limits\" denies this request: 200Gi is above its maxSize of 100Gi; ask \
             for at most 100Gi"
                .into()
        )
    );
    f.request.size = Some("100Gi".into());
    allowed(&f);

    let mut f = facts("4Gi");
    f.policies = vec![policy(
        "steps",
        VolumeExpansionPolicySpec {
            max_increase: Some("200%".into()),
            ..Default::default()
        },
    )];
    assert_eq!(
        denied(&f).1,
        "VolumeExpansionPolicy \"steps\" denies this request: growing from 1Gi (largest PVC data-rd-shard0-0) to \
         4Gi adds 3Gi, above its maxIncrease of 200% (2Gi); grow in smaller steps"
    );
    f.request.size = Some("3Gi".into());
    allowed(&f);
    f.policies[0].spec.max_increase = Some("1Gi".into());
    assert!(
        denied(&f)
            .1
            .contains("adds 2Gi, above its maxIncrease of 1Gi (1Gi)")
    );

    let mut f = facts("2Gi");
    f.request.mode = Some(Ok(VolumeExpansionMode::Offline));
    f.policies = vec![policy(
        "online-only",
        VolumeExpansionPolicySpec {
            allowed_modes: vec![VolumeExpansionMode::Online],
            ..Default::default()
        },
    )];
    assert_eq!(
        denied(&f).1,
        "VolumeExpansionPolicy \"online-only\" denies this request: mode Offline is not allowed (allowedModes: Online)"
    );

    let mut f = facts("2Gi");
    f.policies = vec![policy(
        "classes",
        VolumeExpansionPolicySpec {
            allowed_storage_classes: vec!["gold".into(), "silver".into()],
            ..Default::default()
        },
    )];
    assert_eq!(
        denied(&f).1,
        "VolumeExpansionPolicy \"classes\" denies this request: StorageClass \"fast\" is not allowed \
         (allowedStorageClasses: gold, silver)"
    );

    // Warn turns the same violation into a warning.
    let mut f = facts("200Gi");
    f.policies = vec![policy(
        "soft",
        VolumeExpansionPolicySpec {
            enforcement: Enforcement::Warn,
            ..max("100Gi")
        },
    )];
    assert_eq!(
        allowed(&f),
        ["VolumeExpansionPolicy \"soft\" (Warn): 200Gi is above its maxSize of 100Gi; ask for at most 100Gi"]
    );

    // A policy that does not select the namespace does not apply.
    let mut f = facts("200Gi");
    let mut p = max("100Gi");
    p.namespace_selector = Some(LabelSelector {
        match_labels: Some([("tenant".to_string(), "b".to_string())].into()),
        match_expressions: None,
    });
    f.policies = vec![policy("tenant-b", p.clone())];
    allowed(&f);
    f.namespace_labels.insert("tenant".into(), "b".into());
    assert_eq!(denied(&f).0, Rule::Policy);
}

#[test]
fn rule9_spec_is_immutable_but_status_updates_pass() {
    let old = json!({"metadata": {"name": "grow", "namespace": "demo"},
                     "spec": {"type": "VolumeExpansion", "databaseRef": {"name": "rd"},
                              "volumeExpansion": {"mode": "Online", "redis": "2Gi"}}});
    let mut status_only = old.clone();
    status_only["status"] = json!({"phase": "Progressing"});
    status_only["metadata"]["labels"] = json!({"x": "y"});
    assert_eq!(
        validate_spec_unchanged(DatabaseKind::Redis, &old, &status_only),
        Ok(())
    );
    let mut changed = old.clone();
    changed["spec"]["volumeExpansion"]["redis"] = json!("3Gi");
    changed["spec"]["timeout"] = json!("1m");
    let d = validate_spec_unchanged(DatabaseKind::Redis, &old, &changed).unwrap_err();
    assert_eq!(d.rule, Rule::Immutable);
    assert_eq!(
        d.message,
        "the spec of RedisOpsRequest demo/grow cannot change once the request is accepted (changed: spec.timeout, \
         spec.volumeExpansion.redis); create a new RedisOpsRequest instead"
    );
}

#[test]
fn kubedb_owning_volume_expansion_makes_volops_admit_it_untouched() {
    use crate::facts::VolumeExpansionOwner;
    // Even a request volops would deny (a shrink) is KubeDB's to judge.
    let mut f = facts("512Mi");
    assert_eq!(denied(&f).0, Rule::NotGrowing);
    f.options.volume_expansion_owner = VolumeExpansionOwner::Kubedb;
    assert_eq!(
        allowed(&f),
        [
            "volops leaves RedisOpsRequest of type VolumeExpansion to KubeDB's ops-manager \
          (--volume-expansion-owner kubedb)"
        ]
    );
}

#[test]
fn rule10_queue_warnings() {
    let mut f = facts("2Gi");
    let mut running = request("3Gi");
    running.name = "first".into();
    running.phase = Some(OpsRequestPhase::Progressing);
    running.created = Some("2026-01-01T00:00:01Z".into());
    let mut waiting = request("4Gi");
    waiting.name = "second".into();
    waiting.created = Some("2026-01-01T00:00:05Z".into());
    let mut done = request("4Gi");
    done.name = "old".into();
    done.phase = Some(OpsRequestPhase::Successful);
    let mut other_db = request("4Gi");
    other_db.name = "elsewhere".into();
    other_db.database = Some("rd2".into());
    f.other_requests = vec![waiting, done, running, other_db];
    assert_eq!(
        allowed(&f),
        [
            "RedisOpsRequest demo/first is already Progressing for Redis demo/rd; this request will wait until it finishes",
            "RedisOpsRequest demo/second is still Pending for Redis demo/rd; it will be Skipped in favour of this newer request",
        ]
    );
    // Every phase that is not final is active, as `OpsRequestPhase::is_final` says.
    let mut approval = request("4Gi");
    approval.name = "approval".into();
    approval.created = Some("2026-01-01T00:00:00Z".into());
    approval.phase = Some(OpsRequestPhase::WaitingForApproval);
    f.other_requests = vec![approval];
    assert_eq!(
        allowed(&f),
        [
            "RedisOpsRequest demo/approval is WaitingForApproval for Redis demo/rd; this request may wait until it is over"
        ]
    );
}

#[test]
fn queue_decisions_follow_kubedb() {
    let req = |name: &str, t: &str, created: &str, phase: Option<&str>| {
        let mut r = request("2Gi");
        r.name = name.into();
        r.type_ = Some(t.into());
        r.created = Some(created.into());
        r.phase = phase.and_then(OpsRequestPhase::parse);
        r
    };
    let a = req("a", "VolumeExpansion", "2026-01-01T00:00:01Z", None);
    let b = req("b", "VolumeExpansion", "2026-01-01T00:00:02Z", Some("Pending"));
    let p = req("p", "Restart", "2026-01-01T00:00:00Z", Some("Progressing"));
    let r = req("r", "Restart", "2026-01-01T00:00:00Z", None);
    // A Progressing request for the same DB blocks everything.
    assert_eq!(
        decide_queue(&b, &[a.clone(), p.clone()]),
        QueueDecision::Wait { behind: "p".into() }
    );
    // The older request of the same type is superseded by the newer.
    assert_eq!(
        decide_queue(&a, std::slice::from_ref(&b)),
        QueueDecision::Skip {
            superseded_by: "b".into()
        }
    );
    assert_eq!(decide_queue(&b, std::slice::from_ref(&a)), QueueDecision::Run);
    // Across types the oldest survivor runs first.
    assert_eq!(
        decide_queue(&b, std::slice::from_ref(&r)),
        QueueDecision::Wait { behind: "r".into() }
    );
    assert_eq!(decide_queue(&r, std::slice::from_ref(&b)), QueueDecision::Run);
    // Equal creation times: the larger name is the newer.
    let c = req("c", "VolumeExpansion", "2026-01-01T00:00:02Z", None);
    assert_eq!(
        decide_queue(&b, std::slice::from_ref(&c)),
        QueueDecision::Skip {
            superseded_by: "c".into()
        }
    );
    // A newer request of the same type that already runs or succeeded also supersedes (the
    // controller may admit the newer one first); one that Failed or was Skipped does not.
    let running = req(
        "n",
        "VolumeExpansion",
        "2026-01-01T00:00:03Z",
        Some("Progressing"),
    );
    assert_eq!(
        decide_queue(&a, std::slice::from_ref(&running)),
        QueueDecision::Skip {
            superseded_by: "n".into()
        }
    );
    let mut done = req("z", "VolumeExpansion", "2026-01-01T00:00:09Z", Some("Successful"));
    assert_eq!(
        decide_queue(&a, std::slice::from_ref(&done)),
        QueueDecision::Skip {
            superseded_by: "z".into()
        }
    );
    for phase in ["Failed", "Skipped"] {
        done.phase = OpsRequestPhase::parse(phase);
        assert_eq!(
            decide_queue(&a, std::slice::from_ref(&done)),
            QueueDecision::Run,
            "{phase}"
        );
    }
    // An older request that runs blocks a newer one; other databases do not count.
    assert_eq!(
        decide_queue(
            &running,
            &[req(
                "o",
                "VolumeExpansion",
                "2026-01-01T00:00:00Z",
                Some("Progressing")
            )]
        ),
        QueueDecision::Wait { behind: "o".into() }
    );
    done.phase = None;
    done.database = Some("other".into());
    assert_eq!(decide_queue(&a, &[done]), QueueDecision::Run);
}

#[test]
fn plan_warnings_preview_every_pvc() {
    let f = facts("2Gi");
    assert_eq!(
        plan_warnings(&f),
        [
            "plan: Redis demo/rd will be paused during the expansion and resumed after it",
            "plan: PVC data-rd-shard0-0 grows 1Gi -> 2Gi (Online, all volumes at once)",
            "plan: PVC data-rd-shard0-1 grows 1Gi -> 2Gi (Online, all volumes at once)",
            "plan: PVC data-rd-shard1-0 grows 1Gi -> 2Gi (Online, all volumes at once)",
            "plan: PVC data-rd-shard1-1 grows 1Gi -> 2Gi (Online, all volumes at once)",
            "plan: the petsets of Redis rd will be recreated with claim size 2Gi; its pods keep running",
        ]
    );
}
