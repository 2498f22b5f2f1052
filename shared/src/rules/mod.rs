//! The admission rules (docs/ARCHITECTURE.md, "Where each rule lives") as pure functions over [`Facts`]. The webhook turns a
//! [`Verdict`] into an AdmissionResponse; the controller re-checks the same rules before it acts.

mod annotations;
mod autoscale_limits;
mod autoscaler;
mod database;
mod immutable;
mod policy;
mod pvc;
mod queue;
mod quota;
mod request;
mod size;
mod storage;
mod timeout;

pub use annotations::{OWNED_ANNOTATION_PREFIXES, is_owned_annotation, validate_owned_annotations};
pub use autoscale_limits::{AutoscaledDatabase, autoscale_limits};
pub use autoscaler::{AutoscalerFacts, validate_autoscaler};
pub use database::{database_edit, validate_database_update};
pub use immutable::validate_spec_unchanged;
pub use policy::{policy_applies, policy_problems, validate_policy};
pub use pvc::{PvcGrowth, pvc_database, validate_pvc_growth};
pub use queue::{QueueDecision, decide_queue};
pub use quota::quotas_need_namespace_pvcs;
pub use size::{current_size, target_size};
pub use timeout::validate_timeout;

use std::cell::OnceCell;

use crate::api::VolumeExpansionMode;
use crate::facts::{Facts, PvcView};
use crate::quantity::Quantity;

/// Which rule decided a denial (a stable label for metrics and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    UnsupportedType,
    DatabaseMissing,
    NotDurable,
    NoStorage,
    SizeField,
    NotGrowing,
    StorageClass,
    PvcState,
    Quota,
    Policy,
    Immutable,
    DatabaseShrink,
    /// A volops-owned annotation written by someone other than the controller.
    OwnedAnnotation,
    /// `spec.timeout` is not a Go duration.
    Timeout,
    /// Storage growing outside an ops request where direct growth is denied.
    DirectGrowth,
    /// A VolumeExpansionPolicy volops cannot enforce.
    InvalidPolicy,
    /// A storage autoscaler volops cannot act on.
    InvalidAutoscaler,
}

impl Rule {
    pub fn label(self) -> &'static str {
        match self {
            Self::UnsupportedType => "unsupported_type",
            Self::DatabaseMissing => "database_missing",
            Self::NotDurable => "not_durable",
            Self::NoStorage => "no_storage",
            Self::SizeField => "size_field",
            Self::NotGrowing => "not_growing",
            Self::StorageClass => "storage_class",
            Self::PvcState => "pvc_state",
            Self::Quota => "quota",
            Self::Policy => "policy",
            Self::Immutable => "immutable",
            Self::DatabaseShrink => "database_shrink",
            Self::OwnedAnnotation => "owned_annotation",
            Self::Timeout => "timeout",
            Self::DirectGrowth => "direct_growth",
            Self::InvalidPolicy => "invalid_policy",
            Self::InvalidAutoscaler => "invalid_autoscaler",
        }
    }
}

/// Why a request is refused; the message says what is wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub rule: Rule,
    pub message: String,
}

impl Denial {
    pub(crate) fn new(rule: Rule, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }
}

/// The outcome of the rules: allowed (maybe with warnings) or denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub denial: Option<Denial>,
    pub warnings: Vec<String>,
}

impl Verdict {
    pub fn allow(warnings: Vec<String>) -> Self {
        Self {
            denial: None,
            warnings,
        }
    }
    pub fn deny(denial: Denial, warnings: Vec<String>) -> Self {
        Self {
            denial: Some(denial),
            warnings,
        }
    }
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }
    /// The denial message, if denied.
    pub fn message(&self) -> Option<&str> {
        self.denial.as_ref().map(|d| d.message.as_str())
    }
}

/// A rule's result: warnings to pass on, or a denial.
pub(crate) type RuleResult = Result<Vec<String>, Denial>;

/// What the CREATE rules share, worked out once per decision instead of once per rule.
pub(crate) struct Ctx<'a> {
    pub(crate) facts: &'a Facts,
    /// The requested size, if present and valid.
    pub(crate) target: Option<Quantity>,
    db_pvcs: OnceCell<Vec<&'a PvcView>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(facts: &'a Facts) -> Self {
        Self {
            facts,
            target: size::target_size(facts),
            db_pvcs: OnceCell::new(),
        }
    }

    /// [`Facts::database_pvcs`], computed on first use.
    pub(crate) fn db_pvcs(&self) -> &[&'a PvcView] {
        self.db_pvcs.get_or_init(|| self.facts.database_pvcs())
    }
}

/// Every CREATE rule in order (docs/ARCHITECTURE.md); the first denial wins.
pub fn validate_create(facts: &Facts) -> Verdict {
    let mut warnings = Vec::new();
    match request::check_type(facts) {
        Ok(request::TypeDecision::Handle) => {}
        Ok(request::TypeDecision::PassThrough(w)) => return Verdict::allow(w),
        Err(d) => return Verdict::deny(d, warnings),
    }
    let ctx = Ctx::new(facts);
    let rules: [fn(&Ctx<'_>) -> RuleResult; 7] = [
        request::check_database,
        request::check_size_field,
        size::check_growing,
        storage::check_classes,
        storage::check_pvcs,
        quota::check_quotas,
        policy::check_policies,
    ];
    for rule in rules {
        match rule(&ctx) {
            Ok(w) => warnings.extend(w),
            Err(d) => return Verdict::deny(d, warnings),
        }
    }
    warnings.extend(queue::queue_warnings(facts));
    Verdict::allow(warnings)
}

/// Warnings that preview what the request will do, for `kubectl apply --dry-run=server`.
pub fn plan_warnings(facts: &Facts) -> Vec<String> {
    const MAX_LINES: usize = 20;
    let (Some(db), Some(target)) = (&facts.database, size::target_size(facts)) else {
        return Vec::new();
    };
    let mode = facts.request.valid_mode().unwrap_or_default();
    let kind = facts.kind.kind();
    let mut lines = vec![format!(
        "plan: {kind} {}/{} will be paused during the expansion and resumed after it",
        db.namespace, db.name
    )];
    let how = match mode {
        VolumeExpansionMode::Offline => "Offline, one pod at a time",
        VolumeExpansionMode::Online => "Online, all volumes at once",
    };
    let pvcs = facts.database_pvcs();
    for pvc in pvcs.iter().take(MAX_LINES) {
        let from = storage::text_or_unknown(if pvc.capacity.is_some() {
            &pvc.capacity
        } else {
            &pvc.request
        });
        lines.push(format!("plan: PVC {} grows {from} -> {target} ({how})", pvc.name));
    }
    if pvcs.len() > MAX_LINES {
        lines.push(format!("plan: ... and {} more PVCs", pvcs.len() - MAX_LINES));
    }
    lines.push(format!(
        "plan: the {} of {kind} {} will be recreated with claim size {target}; its pods keep running",
        facts.kind.workload_kind().plural(),
        db.name
    ));
    lines
}

#[cfg(test)]
mod autoscaler_tests;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod growth_tests;
#[cfg(test)]
mod instance_tests;
#[cfg(test)]
mod tenant_tests;
#[cfg(test)]
mod tests;
