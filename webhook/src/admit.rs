//! Turns an AdmissionRequest into a decision, using only the caches and the shared rules
//! (storage autoscalers: `crate::autoscaler`).

use serde_json::value::RawValue;
use volops_shared::DatabaseKind;
use volops_shared::api::VolumeExpansionPolicy;
use volops_shared::api::autoscaler::kind_of_autoscaler;
use volops_shared::defaults::defaults_patch;
use volops_shared::facts::{DatabaseView, OpsRequestView, PvcView, RuleOptions};
use volops_shared::rules::{
    Denial, Rule, Verdict, database_edit, plan_warnings, validate_create, validate_database_update,
    validate_owned_annotations, validate_policy, validate_pvc_growth, validate_spec_unchanged,
    validate_timeout,
};

use crate::autoscaler;
use crate::caches::Caches;
use crate::fields;
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
    /// A storage autoscaler of the database kind.
    Autoscaler(DatabaseKind),
    Database(DatabaseKind),
    Pvc,
    Policy,
    Other,
}

fn target(req: &AdmissionRequest<'_>) -> Target {
    let (group, k) = (&req.kind.group, &req.kind.kind);
    if let Some(kind) = DatabaseKind::from_ops_kind(k).filter(|_| group == "ops.kubedb.com") {
        Target::Ops(kind)
    } else if let Some(kind) = kind_of_autoscaler(k).filter(|_| group == "autoscaling.kubedb.com") {
        Target::Autoscaler(kind)
    } else if let Some(kind) = DatabaseKind::from_kind(k).filter(|kd| group == kd.group()) {
        Target::Database(kind)
    } else if group.is_empty() && k == "PersistentVolumeClaim" {
        Target::Pvc
    } else if group == "volops.dev" && k == "VolumeExpansionPolicy" {
        Target::Policy
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
        | Rule::DatabaseShrink
        | Rule::Timeout
        | Rule::InvalidPolicy
        | Rule::InvalidAutoscaler => 422,
        Rule::DatabaseMissing
        | Rule::NotDurable
        | Rule::NoStorage
        | Rule::StorageClass
        | Rule::PvcState
        | Rule::Quota
        | Rule::Policy
        | Rule::OwnedAnnotation
        | Rule::DirectGrowth => 403,
    }
}

pub(crate) fn denied(uid: &str, denial: Denial, warnings: Vec<String>) -> Decision {
    Decision {
        response: AdmissionResponse::deny(uid, status_code(denial.rule), denial.message, warnings),
        rule: Some(denial.rule.label()),
    }
}

pub(crate) fn allowed(uid: &str, warnings: Vec<String>) -> Decision {
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
pub(crate) fn same_spec_text(req: &AdmissionRequest<'_>) -> bool {
    fn spec(raw: Option<&RawValue>) -> Option<Option<&str>> {
        let s: SpecText<'_> = serde_json::from_str(raw?.get()).ok()?;
        Some(s.spec.map(RawValue::get))
    }
    match (spec(req.old_object), spec(req.object)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

pub(crate) fn verdict(uid: &str, v: Verdict) -> Decision {
    match v.denial {
        Some(d) => denied(uid, d, v.warnings),
        None => allowed(uid, v.warnings),
    }
}

/// Whether the controller itself asks: its writes are admitted unchecked, so that it never
/// depends on a rule meant for tenants (the chart's matchConditions skip it where the API
/// server evaluates them; this covers clusters that do not).
fn from_controller(req: &AdmissionRequest<'_>, options: &RuleOptions) -> bool {
    options
        .controller_username
        .as_deref()
        .is_some_and(|u| !u.is_empty() && *req.user_info.username == *u)
}

/// `Kind namespace/name` of the object under review, for messages.
fn describe(req: &AdmissionRequest<'_>) -> String {
    format!(
        "{} {}/{}",
        req.kind.kind,
        req.namespace.as_deref().unwrap_or_default(),
        req.name.as_deref().unwrap_or_default()
    )
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
    if from_controller(req, options) {
        return allowed(uid, Vec::new());
    }
    match (endpoint, &*req.operation, target) {
        (Endpoint::Mutate, "CREATE", Target::Ops(kind)) => {
            // A request the typed API cannot read gets no defaults: /validate denies it with the
            // rule it breaks. (Serialising a patch of JSON values cannot fail in practice.)
            let response = defaults_patch(kind, &req.object_value())
                .map_err(|e| e.to_string())
                .and_then(|patch| {
                    AdmissionResponse::allow(uid, Vec::new())
                        .with_patch(&patch)
                        .map_err(|e| e.to_string())
                });
            match response {
                Ok(response) => Decision { response, rule: None },
                Err(e) => allowed(uid, vec![format!("volops could not apply defaults: {e}")]),
            }
        }
        (Endpoint::Validate, "CREATE", Target::Ops(kind)) => validate_ops_create(kind, req, caches, options),
        (Endpoint::Validate, "UPDATE", Target::Ops(kind)) => validate_ops_update(kind, req),
        (Endpoint::Validate, "UPDATE", Target::Database(kind)) if req.sub_resource.is_none() => {
            validate_database(kind, req, caches, options)
        }
        (Endpoint::Validate, "UPDATE", Target::Pvc) if req.sub_resource.is_none() => {
            validate_pvc(req, caches, options)
        }
        (Endpoint::Validate, "CREATE" | "UPDATE", Target::Policy) => validate_policy_object(req),
        (Endpoint::Mutate, "CREATE" | "UPDATE", Target::Autoscaler(kind)) if req.sub_resource.is_none() => {
            autoscaler::mutate(kind, req, options)
        }
        (Endpoint::Validate, "CREATE" | "UPDATE", Target::Autoscaler(kind)) if req.sub_resource.is_none() => {
            autoscaler::validate(kind, req, caches, options)
        }
        // DELETE, CONNECT, database CREATE, status updates of databases and PVCs, mutate on UPDATE.
        _ => allowed(uid, Vec::new()),
    }
}

/// An ops request's CREATE: no controller annotations, a duration for a timeout, then every
/// rule on the cluster's state.
fn validate_ops_create(
    kind: DatabaseKind,
    req: &AdmissionRequest<'_>,
    caches: &Caches,
    options: &RuleOptions,
) -> Decision {
    let uid: &str = &req.uid;
    let extra = fields::ops_fields(req.object);
    if let Err(d) = validate_owned_annotations(&describe(req), &[], &extra.annotation_pairs())
        .and_then(|()| validate_timeout(extra.timeout.as_deref()))
    {
        return denied(uid, d, Vec::new());
    }
    // The one reader of a request's view, as in the caches and the controller.
    let request = OpsRequestView::from_json(kind, &req.object_value());
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

/// An ops request's UPDATE (of the object, or of its status from an older configuration): the
/// controller's annotations stay as they are, and so does the spec.
fn validate_ops_update(kind: DatabaseKind, req: &AdmissionRequest<'_>) -> Decision {
    let uid: &str = &req.uid;
    let (old, new) = (fields::ops_fields(req.old_object), fields::ops_fields(req.object));
    if let Err(d) =
        validate_owned_annotations(&describe(req), &old.annotation_pairs(), &new.annotation_pairs())
    {
        return denied(uid, d, Vec::new());
    }
    if same_spec_text(req) {
        return allowed(uid, Vec::new());
    }
    match validate_spec_unchanged(kind, &req.old_object_value(), &req.object_value()) {
        Ok(()) => allowed(uid, Vec::new()),
        Err(d) => denied(uid, d, Vec::new()),
    }
}

/// A database's UPDATE: its `spec.storage` judged against its volumes when it changes.
fn validate_database(
    kind: DatabaseKind,
    req: &AdmissionRequest<'_>,
    caches: &Caches,
    options: &RuleOptions,
) -> Decision {
    let uid: &str = &req.uid;
    let (old, new) = (req.old_object_value(), req.object_value());
    let (before, after) = (fields::database_storage(&old), fields::database_storage(&new));
    let Some(after) = after.filter(|a| Some(a) != before.as_ref()) else {
        return allowed(uid, Vec::new());
    };
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let name = req.name.as_deref().unwrap_or_default();
    let mut facts = caches.facts_of(kind, namespace, database_edit(namespace, name, &after), options);
    // The database as it was, from the review (the cache may lag by an event).
    let mut db = DatabaseView::from_json(kind, &old);
    if db.namespace.is_empty() {
        db.namespace = namespace.to_owned();
    }
    facts.database = Some(db);
    verdict(uid, validate_database_update(&facts, before.as_deref()))
}

/// A PVC's UPDATE: a storage request that grows is judged (see `--direct-growth`).
fn validate_pvc(req: &AdmissionRequest<'_>, caches: &Caches, options: &RuleOptions) -> Decision {
    let uid: &str = &req.uid;
    let (old, new) = (req.old_object_value(), req.object_value());
    let Some(requested) = fields::pvc_request(&new).filter(|r| Some(r) != fields::pvc_request(&old).as_ref())
    else {
        return allowed(uid, Vec::new());
    };
    let Ok(pvc) = serde_json::from_value(old) else {
        return allowed(uid, Vec::new());
    };
    let namespace = req.namespace.as_deref().unwrap_or_default();
    let growth = caches.pvc_growth(namespace, PvcView::from_pvc(&pvc), requested, options);
    verdict(uid, validate_pvc_growth(&growth))
}

/// A VolumeExpansionPolicy's CREATE or UPDATE: refused when volops could not enforce it.
fn validate_policy_object(req: &AdmissionRequest<'_>) -> Decision {
    let uid: &str = &req.uid;
    let name = req.name.as_deref().unwrap_or_default();
    let text = req.object.map(RawValue::get).unwrap_or("null");
    match serde_json::from_str::<VolumeExpansionPolicy>(text) {
        Ok(policy) => match validate_policy(name, &policy.spec) {
            Ok(()) => allowed(uid, Vec::new()),
            Err(d) => denied(uid, d, Vec::new()),
        },
        Err(e) => denied(
            uid,
            Denial {
                rule: Rule::InvalidPolicy,
                message: format!("VolumeExpansionPolicy {name:?} cannot be enforced: {e}"),
            },
            Vec::new(),
        ),
    }
}
