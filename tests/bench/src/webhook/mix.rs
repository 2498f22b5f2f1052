//! The review mix (pure): AdmissionReviews of RedisOpsRequests and ZooKeeperOpsRequests built
//! against the fixture's objects, each with the answer the webhook must give, and the check of
//! an answer.

use bytes::Bytes;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Deserialize;
use serde_json::{Value, json};
use volops_shared::DatabaseKind;

use super::fixture::Database;

/// What a review exercises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Case {
    /// A growing expansion of a healthy database: allowed.
    Valid,
    /// The mutating endpoint on a CREATE that leaves defaults out: allowed with a patch.
    Mutate,
    /// A /status UPDATE (the controller reporting progress): allowed.
    StatusUpdate,
    Shrink,
    NonExpandableClass,
    MissingDatabase,
    Ephemeral,
    QuotaExceeded,
    PolicyMaxSize,
    BadSize,
    UnsupportedType,
    SpecChange,
}

/// Each case and its share of the mix, in percent.
pub const WEIGHTS: [(Case, usize); 12] = [
    (Case::Valid, 30),
    (Case::Mutate, 20),
    (Case::StatusUpdate, 8),
    (Case::Shrink, 6),
    (Case::NonExpandableClass, 5),
    (Case::MissingDatabase, 5),
    (Case::Ephemeral, 5),
    (Case::QuotaExceeded, 5),
    (Case::PolicyMaxSize, 5),
    (Case::BadSize, 4),
    (Case::UnsupportedType, 4),
    (Case::SpecChange, 3),
];

/// Slots whose databases can be grown (not Ephemeral, not on the fixed class).
const GROWABLE_SLOTS: [usize; 18] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19];

/// The answer a review must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Allowed {
        patch: bool,
    },
    /// Denied with this HTTP-style code and a message containing the fragment.
    Denied {
        code: u16,
        fragment: &'static str,
    },
}

impl Case {
    pub fn expect(self) -> Expect {
        let denied = |code, fragment| Expect::Denied { code, fragment };
        match self {
            Case::Valid | Case::StatusUpdate => Expect::Allowed { patch: false },
            Case::Mutate => Expect::Allowed { patch: true },
            Case::Shrink => denied(422, "must be greater than the current"),
            Case::NonExpandableClass => denied(403, "does not allow volume expansion"),
            Case::MissingDatabase => denied(403, "not found"),
            Case::Ephemeral => denied(403, "spec.storageType Ephemeral"),
            Case::QuotaExceeded => denied(403, "ResourceQuota"),
            Case::PolicyMaxSize => denied(403, "maxSize"),
            Case::BadSize => denied(422, "is not a valid quantity"),
            // Other ops types pass through by default (docs/KUBEDB.md): allowed, unpatched.
            Case::UnsupportedType => Expect::Allowed { patch: false },
            Case::SpecChange => denied(422, "cannot change once the request is accepted"),
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Case::Mutate => "/mutate",
            _ => "/validate",
        }
    }
}

/// One prepared review.
#[derive(Clone, Debug)]
pub struct Review {
    pub case: Case,
    pub path: &'static str,
    pub uid: String,
    pub body: Bytes,
    pub expect: Expect,
}

/// `count` reviews spread over namespaces `0..namespaces`, the cases in `WEIGHTS` proportions
/// and shuffled by `seed`.
pub fn build(count: usize, namespaces: usize, seed: u64) -> Vec<Review> {
    let mut cycle: Vec<Case> = WEIGHTS
        .iter()
        .flat_map(|&(case, n)| std::iter::repeat_n(case, n))
        .collect();
    cycle.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    (0..count)
        .map(|i| {
            let case = cycle[i % cycle.len()];
            let round = i / cycle.len();
            review(case, i % namespaces.max(1), round + i, i)
        })
        .collect()
}

/// The review of `case` in namespace `ns`; `variant` picks among suitable databases.
pub fn review(case: Case, ns: usize, variant: usize, serial: usize) -> Review {
    let pick = |slots: &[usize]| Database::new(ns, slots[variant % slots.len()]);
    let (db, size) = match case {
        Case::Valid | Case::Mutate | Case::StatusUpdate | Case::SpecChange => (pick(&GROWABLE_SLOTS), "2Gi"),
        Case::UnsupportedType => (pick(&GROWABLE_SLOTS), "2Gi"),
        Case::Shrink => (pick(&[3, 12, 17]), "512Mi"),
        Case::NonExpandableClass => (pick(&[15]), "2Gi"),
        Case::MissingDatabase => (pick(&[0, 14]), "2Gi"),
        Case::Ephemeral => (pick(&[8]), "2Gi"),
        // Clusters of 12 PVCs on the fast class: 105Gi - 12Gi + 1200Gi > 900Gi.
        Case::QuotaExceeded => (pick(&[4, 6]), "100Gi"),
        // One or three PVCs: within both quotas, above the policy's 100Gi.
        Case::PolicyMaxSize => (pick(&[11, 18]), "150Gi"),
        Case::BadSize => (pick(&[0, 16]), "lots"),
    };
    let kind = db.kind();
    let uid = format!("0000bench-{serial:08}-{}", case_tag(case));
    let name = format!("bench-{serial}");
    let database = if case == Case::MissingDatabase {
        format!("gone-{serial}")
    } else {
        db.name.clone()
    };
    let type_ = if case == Case::UnsupportedType {
        "VerticalScaling"
    } else {
        "VolumeExpansion"
    };
    let mut object = ops_object(
        kind,
        &db.namespace,
        &name,
        &database,
        type_,
        size,
        case != Case::Mutate,
    );
    let mut request = json!({
        "uid": uid,
        "kind": {"group": "ops.kubedb.com", "version": "v1alpha1", "kind": kind.ops_kind()},
        "resource": {"group": "ops.kubedb.com", "version": "v1alpha1", "resource": kind.ops_plural()},
        "requestKind": {"group": "ops.kubedb.com", "version": "v1alpha1", "kind": kind.ops_kind()},
        "requestResource": {"group": "ops.kubedb.com", "version": "v1alpha1", "resource": kind.ops_plural()},
        "name": name,
        "namespace": db.namespace,
        "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions",
                    "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"},
    });
    match case {
        Case::StatusUpdate | Case::SpecChange => {
            let old = object.clone();
            if case == Case::StatusUpdate {
                request["subResource"] = json!("status");
                request["requestSubResource"] = json!("status");
                object["status"] = json!({"phase": "Progressing", "observedGeneration": 1});
            } else {
                object["spec"]["volumeExpansion"][kind.size_field()] = json!("3Gi");
            }
            request["operation"] = json!("UPDATE");
            request["options"] = json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"});
            request["oldObject"] = old;
        }
        _ => {}
    }
    request["object"] = object;
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    Review {
        case,
        path: case.path(),
        uid,
        body: Bytes::from(body.to_string()),
        expect: case.expect(),
    }
}

fn case_tag(case: Case) -> String {
    format!("{case:?}").to_lowercase()
}

/// An ops request as kubectl apply sends it (annotation and managed fields included); without
/// `complete`, the defaults the mutating webhook adds are left out.
fn ops_object(
    kind: DatabaseKind,
    ns: &str,
    name: &str,
    database: &str,
    type_: &str,
    size: &str,
    complete: bool,
) -> Value {
    let mut spec = json!({"type": type_, "databaseRef": {"name": database},
                          "volumeExpansion": {kind.size_field(): size}});
    if complete {
        spec["volumeExpansion"]["mode"] = json!("Online");
        spec["apply"] = json!("IfReady");
        spec["timeout"] = json!("10m");
        spec["maxRetries"] = json!(1);
    }
    let applied = json!({"apiVersion": "ops.kubedb.com/v1alpha1", "kind": kind.ops_kind(),
                         "metadata": {"name": name, "namespace": ns}, "spec": spec});
    json!({
        "apiVersion": "ops.kubedb.com/v1alpha1",
        "kind": kind.ops_kind(),
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": format!("7f3c0a52-{:04x}-4c1e-9d1b-{name}", name.len()),
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{applied}\n")},
            "managedFields": [{
                "manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "ops.kubedb.com/v1alpha1", "time": "2026-01-01T00:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {},
                                 "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                             "f:spec": {".": {}, "f:databaseRef": {".": {}, "f:name": {}},
                                        "f:type": {}, "f:volumeExpansion": {".": {}}}},
            }],
        },
        "spec": spec,
    })
}

#[derive(Deserialize)]
struct ReviewOut {
    response: Option<ResponseOut>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut {
    uid: String,
    allowed: bool,
    #[serde(default)]
    status: Option<StatusOut>,
    #[serde(default)]
    patch_type: Option<String>,
    #[serde(default)]
    patch: Option<String>,
}

#[derive(Deserialize)]
struct StatusOut {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
}

/// Checks an HTTP answer to `review`. `strict` checks the decision too (the no-op handler
/// only has to echo the uid and allow).
pub fn check(review: &Review, http_status: u16, body: &[u8], strict: bool) -> Result<(), String> {
    if http_status != 200 {
        return Err(format!(
            "HTTP {http_status} for {:?}: {}",
            review.case,
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    let out: ReviewOut = serde_json::from_slice(body)
        .map_err(|e| format!("undecodable AdmissionReview for {:?}: {e}", review.case))?;
    let resp = out
        .response
        .ok_or_else(|| format!("AdmissionReview without response for {:?}", review.case))?;
    if resp.uid != review.uid {
        return Err(format!("uid {:?} answered for {:?}", resp.uid, review.uid));
    }
    if !strict {
        return if resp.allowed {
            Ok(())
        } else {
            Err("no-op handler denied".to_owned())
        };
    }
    match (review.expect, resp.allowed) {
        (Expect::Allowed { patch }, true) => {
            let has_patch = resp.patch.is_some() && resp.patch_type.as_deref() == Some("JSONPatch");
            if has_patch == patch {
                Ok(())
            } else {
                Err(format!(
                    "{:?}: patch present {has_patch}, expected {patch}",
                    review.case
                ))
            }
        }
        (Expect::Denied { code, fragment }, false) => {
            let status = resp.status.unwrap_or(StatusOut {
                code: 0,
                message: String::new(),
            });
            if status.code == code && status.message.contains(fragment) {
                Ok(())
            } else {
                Err(format!(
                    "{:?}: denied with {} {:?}, expected {code} containing {fragment:?}",
                    review.case, status.code, status.message
                ))
            }
        }
        (Expect::Allowed { .. }, false) => Err(format!(
            "{:?} denied, expected allowed: {}",
            review.case,
            resp.status.map(|s| s.message).unwrap_or_default()
        )),
        (Expect::Denied { .. }, true) => Err(format!("{:?} allowed, expected denied", review.case)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use volops_shared::facts::RuleOptions;
    use volops_webhook::Caches;
    use volops_webhook::admit::{Endpoint, decide};
    use volops_webhook::review::{ReviewIn, ReviewOut};

    use super::*;

    fn caches(namespaces: usize) -> Caches {
        super::super::inproc::caches(namespaces).unwrap()
    }

    /// What the webhook's own decision code answers to `review`, as it would send it.
    fn webhook_answer(caches: &Caches, review: &Review) -> Vec<u8> {
        let input: ReviewIn<'_> = serde_json::from_slice(&review.body).unwrap();
        let endpoint = if review.path == "/mutate" {
            Endpoint::Mutate
        } else {
            Endpoint::Validate
        };
        let decision = decide(endpoint, &input.request.unwrap(), caches, &RuleOptions::default());
        serde_json::to_vec(&ReviewOut::new(decision.response)).unwrap()
    }

    #[test]
    fn every_review_gets_its_expected_answer_from_the_webhook_rules() {
        let caches = caches(2);
        let reviews = build(600, 2, 3);
        let mut seen = HashSet::new();
        for r in &reviews {
            let answer = webhook_answer(&caches, r);
            check(r, 200, &answer, true).unwrap_or_else(|e| panic!("{e}"));
            seen.insert(r.case);
        }
        assert_eq!(seen.len(), WEIGHTS.len(), "every case is in the mix");
    }

    #[test]
    fn mix_follows_the_weights_and_spreads_over_kinds_and_namespaces() {
        let reviews = build(1000, 3, 1);
        let mut by_case = BTreeMap::new();
        for r in &reviews {
            *by_case.entry(r.case).or_insert(0usize) += 1;
        }
        for (case, weight) in WEIGHTS {
            assert_eq!(by_case[&case], weight * 10, "{case:?}");
        }
        assert_eq!(WEIGHTS.iter().map(|(_, w)| w).sum::<usize>(), 100);
        let uids: HashSet<&str> = reviews.iter().map(|r| r.uid.as_str()).collect();
        assert_eq!(uids.len(), reviews.len(), "uids are unique");
        let text = |r: &Review| String::from_utf8_lossy(&r.body).into_owned();
        let valid: Vec<String> = reviews
            .iter()
            .filter(|r| r.case == Case::Valid)
            .map(text)
            .collect();
        assert!(valid.iter().any(|b| b.contains("\"RedisOpsRequest\"")));
        assert!(valid.iter().any(|b| b.contains("\"ZooKeeperOpsRequest\"")));
        for ns in ["bench-000", "bench-001", "bench-002"] {
            assert!(
                valid
                    .iter()
                    .any(|b| b.contains(&format!("\"namespace\":\"{ns}\"")))
            );
        }
        // The same seed gives the same mix; another seed another order.
        let again = build(1000, 3, 1);
        assert!(reviews.iter().zip(&again).all(|(a, b)| a.body == b.body));
        let other = build(1000, 3, 2);
        assert!(reviews.iter().zip(&other).any(|(a, b)| a.case != b.case));
    }

    #[test]
    fn check_counts_wrong_answers() {
        let caches = caches(1);
        let valid = review(Case::Valid, 0, 0, 1);
        let shrink = review(Case::Shrink, 0, 0, 2);
        let valid_answer = webhook_answer(&caches, &valid);
        let shrink_answer = webhook_answer(&caches, &shrink);
        assert!(check(&valid, 200, &valid_answer, true).is_ok());
        assert!(check(&shrink, 200, &shrink_answer, true).is_ok());
        // The right decision for the wrong uid, a denial where allowed is due, and the reverse.
        assert!(check(&shrink, 200, &valid_answer, true).is_err());
        let mut swapped = valid.clone();
        swapped.uid = shrink.uid.clone();
        assert!(check(&swapped, 200, &shrink_answer, true).is_err());
        let mut wants_denial = shrink.clone();
        wants_denial.uid = valid.uid.clone();
        assert!(check(&wants_denial, 200, &valid_answer, true).is_err());
        assert!(check(&valid, 500, &valid_answer, true).is_err());
        assert!(check(&valid, 200, b"not json", true).is_err());
        // The no-op handler only has to echo the uid and allow.
        assert!(check(&wants_denial, 200, &valid_answer, false).is_ok());
        assert!(check(&shrink, 200, &shrink_answer, false).is_err());
    }
}
