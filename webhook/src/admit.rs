//! Turns an AdmissionRequest into a decision, using only the caches and the shared rules.

use serde_json::value::RawValue;
use volops_shared::DatabaseKind;
use volops_shared::defaults::defaults_patch;
use volops_shared::facts::{OpsRequestView, RuleOptions};
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

fn target(req: &AdmissionRequest<'_>) -> Target {
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

fn unexpected(req: &AdmissionRequest<'_>) -> Decision {
    let k = &req.kind;
    let what = if k.group.is_empty() {
        k.kind.to_string()
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

#[derive(serde::Deserialize)]
struct SpecText<'a> {
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
}

/// True when `spec` is written identically in the object and the old object (status updates):
/// the same text parses to the same value, so the spec did not change. Otherwise (or for odd
/// shapes) the caller compares the parsed values.
fn same_spec_text(req: &AdmissionRequest<'_>) -> bool {
    fn spec(raw: Option<&RawValue>) -> Option<Option<&str>> {
        let s: SpecText<'_> = serde_json::from_str(raw?.get()).ok()?;
        Some(s.spec.map(RawValue::get))
    }
    match (spec(req.old_object), spec(req.object)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Decides one request.
pub fn decide(
    endpoint: Endpoint,
    req: &AdmissionRequest<'_>,
    caches: &Caches,
    options: &RuleOptions,
) -> Decision {
    let uid: &str = &req.uid;
    let target = target(req);
    if matches!(target, Target::Other) {
        return unexpected(req);
    }
    match (endpoint, &*req.operation, target) {
        (Endpoint::Mutate, "CREATE", Target::Ops(kind)) => {
            let patch = defaults_patch(kind, &req.object_value());
            match AdmissionResponse::allow(uid, Vec::new()).with_patch(&patch) {
                Ok(response) => Decision { response, rule: None },
                // Serialising a patch of JSON values cannot fail in practice; admit unpatched.
                Err(e) => allowed(uid, vec![format!("volops could not apply defaults: {e}")]),
            }
        }
        (Endpoint::Validate, "CREATE", Target::Ops(kind)) => {
            // The request's eight fields straight from its text; odd shapes go through a Value.
            let raw = req.object.map(RawValue::get);
            let request = raw
                .and_then(|text| OpsRequestView::from_json_text(kind, text))
                .unwrap_or_else(|| OpsRequestView::from_json(kind, &req.object_value()));
            let namespace = req.namespace.as_deref().unwrap_or_default();
            let facts = caches.facts_of(kind, namespace, request, options);
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
        (Endpoint::Validate, "UPDATE", Target::Ops(kind)) => {
            if same_spec_text(req) {
                return allowed(uid, Vec::new());
            }
            match validate_spec_unchanged(kind, &req.old_object_value(), &req.object_value()) {
                Ok(()) => allowed(uid, Vec::new()),
                Err(d) => denied(uid, d, Vec::new()),
            }
        }
        (Endpoint::Validate, "UPDATE", Target::Database(kind)) if req.sub_resource.is_none() => {
            match validate_database_update(kind, &req.old_object_value(), &req.object_value()) {
                Ok(()) => allowed(uid, Vec::new()),
                Err(d) => denied(uid, d, Vec::new()),
            }
        }
        // DELETE, CONNECT, database CREATE, status updates of databases, mutate on UPDATE.
        _ => allowed(uid, Vec::new()),
    }
}
