//! Turns an AdmissionRequest into a decision, using only the caches and the shared rules.

use serde_json::Value;
use volops_shared::DatabaseKind;
use volops_shared::defaults::defaults_patch;
use volops_shared::facts::RuleOptions;
use volops_shared::rules::{
    Denial, Rule, plan_warnings, validate_create, validate_database_update, validate_spec_unchanged,
};

use crate::caches::Caches;
use crate::review::{AdmissionRequest, AdmissionResponse};

/// Which endpoint was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Validate,
    Mutate,
}

/// A response plus what the decision log line and metrics need.
#[derive(Debug)]
pub struct Decision {
    pub response: AdmissionResponse,
    /// The rule that denied, or `None` when allowed.
    pub rule: Option<&'static str>,
}

/// What the object under review is.
enum Target {
    Ops(DatabaseKind),
    Database(DatabaseKind),
    Other,
}

fn target(req: &AdmissionRequest) -> Target {
    let k = &req.kind.kind;
    if let Some(kind) = DatabaseKind::from_ops_kind(k).filter(|_| req.kind.group == "ops.kubedb.com") {
        Target::Ops(kind)
    } else if let Some(kind) = DatabaseKind::from_kind(k).filter(|kd| req.kind.group == kd.group()) {
        Target::Database(kind)
    } else {
        Target::Other
    }
}

/// 422 Invalid when the object itself is wrong; 403 Forbidden when the cluster's state or a
/// policy forbids an otherwise well-formed request.
pub fn status_code(rule: Rule) -> u16 {
    match rule {
        Rule::UnsupportedType
        | Rule::SizeField
        | Rule::NotGrowing
        | Rule::Immutable
        | Rule::DatabaseShrink => 422,
        Rule::DatabaseMissing
        | Rule::NotDurable
        | Rule::NoStorage
        | Rule::StorageClass
        | Rule::PvcState
        | Rule::Quota
        | Rule::Policy => 403,
    }
}

fn denied(uid: &str, denial: Denial, warnings: Vec<String>) -> Decision {
    Decision {
        response: AdmissionResponse::deny(uid, status_code(denial.rule), denial.message, warnings),
        rule: Some(denial.rule.label()),
    }
}

fn allowed(uid: &str, warnings: Vec<String>) -> Decision {
    Decision {
        response: AdmissionResponse::allow(uid, warnings),
        rule: None,
    }
}

fn unexpected(req: &AdmissionRequest) -> Decision {
    let k = &req.kind;
    let what = if k.group.is_empty() {
        k.kind.clone()
    } else {
        format!("{}.{}", k.kind, k.group)
    };
    allowed(
        &req.uid,
        vec![format!(
            "volops webhook does not handle {what}; allowed without checks"
        )],
    )
}

/// Decides one request.
pub fn decide(
    endpoint: Endpoint,
    req: &AdmissionRequest,
    caches: &Caches,
    options: &RuleOptions,
) -> Decision {
    let uid = req.uid.as_str();
    let null = Value::Null;
    let object = req.object.as_ref().unwrap_or(&null);
    let old = req.old_object.as_ref().unwrap_or(&null);
    let target = target(req);
    if matches!(target, Target::Other) {
        return unexpected(req);
    }
    match (endpoint, req.operation.as_str(), target) {
        (Endpoint::Mutate, "CREATE", Target::Ops(kind)) => {
            let patch = defaults_patch(kind, object);
            match AdmissionResponse::allow(uid, Vec::new()).with_patch(&patch) {
                Ok(response) => Decision { response, rule: None },
                // Serialising a patch of JSON values cannot fail in practice; admit unpatched.
                Err(e) => allowed(uid, vec![format!("volops could not apply defaults: {e}")]),
            }
        }
        (Endpoint::Validate, "CREATE", Target::Ops(kind)) => {
            let facts = caches.facts(
                kind,
                req.namespace.as_deref().unwrap_or_default(),
                object,
                options,
            );
            let verdict = validate_create(&facts);
            let mut warnings = verdict.warnings;
            match verdict.denial {
                Some(d) => denied(uid, d, warnings),
                None => {
                    if req.is_dry_run() {
                        warnings.extend(plan_warnings(&facts));
                    }
                    allowed(uid, warnings)
                }
            }
        }
        // Spec updates and /status updates alike: only a spec change is refused.
        (Endpoint::Validate, "UPDATE", Target::Ops(kind)) => match validate_spec_unchanged(kind, old, object)
        {
            Ok(()) => allowed(uid, Vec::new()),
            Err(d) => denied(uid, d, Vec::new()),
        },
        (Endpoint::Validate, "UPDATE", Target::Database(kind)) if req.sub_resource.is_none() => {
            match validate_database_update(kind, old, object) {
                Ok(()) => allowed(uid, Vec::new()),
                Err(d) => denied(uid, d, Vec::new()),
            }
        }
        // DELETE, CONNECT, database CREATE, status updates of databases, mutate on UPDATE.
        _ => allowed(uid, Vec::new()),
    }
}
