//! Deciding with the caller's instance positions (`Facts::instance_pvcs`) gives exactly the
//! verdicts of picking the database's PVCs among the whole namespace.

use super::fixtures::{facts, pvc, quota};
use super::{plan_warnings, validate_create};
use crate::DatabaseKind;
use crate::facts::{Facts, PvcOwner, Shared};

/// Positions of the PVCs labelled with the request's database as instance.
fn positions(f: &Facts) -> Shared<u32> {
    let db = f.request.database.clone().unwrap_or_default();
    f.namespace_pvcs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.owner.as_ref().is_some_and(|o| *o.instance == db))
        .map(|(i, _)| i as u32)
        .collect()
}

fn cases() -> Vec<Facts> {
    let mut out = Vec::new();
    for (size, hard) in [("2Gi", "100Gi"), ("2Gi", "8Gi"), ("4Gi", "12Gi"), ("1Gi", "1Gi")] {
        let mut f = facts(size);
        // Other databases' PVCs around the database's, one of them with a clashing instance
        // label but another kind's labels.
        let mut lookalike = pvc("data-rd-other", "rd", "3Gi");
        lookalike.owner = Some(PvcOwner {
            kind: DatabaseKind::ZooKeeper,
            instance: "rd".into(),
        });
        f.namespace_pvcs.push(lookalike);
        f.namespace_pvcs.push(pvc("data-aa-0", "aa", "5Gi"));
        f.namespace_pvcs.push(pvc("data-zz-0", "zz", "5Gi"));
        f.namespace_pvcs.sort_by(|a, b| a.name.cmp(&b.name));
        f.quotas = vec![
            quota("all", &[("requests.storage", hard)]),
            quota(
                "fast",
                &[("fast.storageclass.storage.k8s.io/requests.storage", hard)],
            ),
        ];
        out.push(f);
    }
    out
}

#[test]
fn verdicts_with_instance_positions_equal_those_of_a_namespace_scan() {
    let mut denials = 0;
    for scanned in cases() {
        let mut indexed = scanned.clone();
        indexed.instance_pvcs = Some(positions(&indexed));
        assert!(indexed.instance_pvcs.as_ref().is_some_and(|p| p.len() == 5));
        assert_eq!(indexed.database_pvcs(), scanned.database_pvcs());
        assert_eq!(scanned.database_pvcs().len(), 4);
        let (a, b) = (validate_create(&indexed), validate_create(&scanned));
        assert_eq!(a, b);
        denials += usize::from(b.denial.is_some());
        assert_eq!(plan_warnings(&indexed), plan_warnings(&scanned));
    }
    assert!(denials >= 2, "the cases exercise quota denials too");
}

#[test]
fn positions_outside_the_namespace_list_are_ignored() {
    let mut f = facts("2Gi");
    f.instance_pvcs = Some(Shared::new(vec![0, 99]));
    assert_eq!(f.database_pvcs().len(), 1);
}
