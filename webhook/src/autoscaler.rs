//! Admission of KubeDB's storage autoscalers (`RedisAutoscaler`, `ZooKeeperAutoscaler`):
//! `/mutate` fills KubeDB's defaults as a JSON patch, `/validate` runs the shared autoscaler
//! rules on the database and the policies from the caches (docs/ARCHITECTURE.md, "Storage
//! autoscaling"). With `--volume-expansion-owner kubedb` both leave them to KubeDB.

use volops_shared::DatabaseKind;
use volops_shared::api::autoscaler::{autoscaler_kind, autoscaler_view};
use volops_shared::autoscale::defaults::defaults_patch;
use volops_shared::facts::{OpsRequestView, RuleOptions, VolumeExpansionOwner};
use volops_shared::rules::{AutoscalerFacts, Denial, Rule, validate_autoscaler};

use crate::admit::{Decision, allowed, denied, same_spec_text, verdict};
use crate::caches::Caches;
use crate::review::{AdmissionRequest, AdmissionResponse};

fn kubedbs(options: &RuleOptions) -> bool {
    options.volume_expansion_owner == VolumeExpansionOwner::Kubedb
}

/// CREATE or UPDATE: KubeDB's defaults, as additions (and the reorder of `scalingRules`).
pub fn mutate(kind: DatabaseKind, req: &AdmissionRequest<'_>, options: &RuleOptions) -> Decision {
    let uid: &str = &req.uid;
    if kubedbs(options) {
        return allowed(uid, Vec::new());
    }
    let patch = defaults_patch(kind, &req.object_value());
    match AdmissionResponse::allow(uid, Vec::new()).with_patch(&patch) {
        Ok(response) => Decision { response, rule: None },
        Err(e) => allowed(uid, vec![format!("volops could not apply defaults: {e}")]),
    }
}

/// CREATE or UPDATE that changes the spec: the autoscaler rules. An UPDATE that leaves the
/// spec as it was (labels, finalizers) is allowed, even once the database is gone.
pub fn validate(
    kind: DatabaseKind,
    req: &AdmissionRequest<'_>,
    caches: &Caches,
    options: &RuleOptions,
) -> Decision {
    let uid: &str = &req.uid;
    if kubedbs(options) {
        let note = format!(
            "volops leaves {} to KubeDB (--volume-expansion-owner kubedb)",
            autoscaler_kind(kind)
        );
        return allowed(uid, vec![note]);
    }
    if req.operation == "UPDATE" && same_spec_text(req) {
        return allowed(uid, Vec::new());
    }
    let autoscaler = match autoscaler_view(kind, &req.object_value()) {
        Ok(a) => a,
        Err(e) => {
            let denial = Denial {
                rule: Rule::InvalidAutoscaler,
                message: e.to_string(),
            };
            return denied(uid, denial, Vec::new());
        }
    };
    let namespace = req.namespace.as_deref().unwrap_or_default();
    // The facts of a request for the database: the database, the policies, the namespace.
    let probe = OpsRequestView {
        namespace: namespace.to_owned(),
        database: Some(autoscaler.database.clone()),
        ..OpsRequestView::default()
    };
    let facts = caches.facts_of(kind, namespace, probe, options);
    verdict(
        uid,
        validate_autoscaler(&AutoscalerFacts {
            kind,
            namespace,
            autoscaler: &autoscaler,
            database: facts.database.as_ref(),
            redis_mode: None,
            policies: &facts.policies,
            namespace_labels: &facts.namespace_labels,
        }),
    )
}
