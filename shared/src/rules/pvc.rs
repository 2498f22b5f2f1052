//! A PVC whose storage request grows outside an ops request (anyone but the controller editing
//! it): judged by the policies and quotas an ops request is, or, for a database's PVC under
//! `--direct-growth deny`, denied (the ops request is the way that also updates the
//! database's workloads and `spec.storage`).

use std::collections::BTreeMap;

use super::{Denial, Rule, Verdict, policy, quota};
use crate::{
    api::VolumeExpansionMode,
    descriptor::DatabaseKind,
    facts::{DirectGrowth, PolicyView, PvcView, QuotaView, RuleOptions, Shared},
    quantity::Quantity,
};

/// What the rules need to judge a PVC growing outside an ops request.
#[derive(Clone, Debug, Default)]
pub struct PvcGrowth {
    pub namespace: String,
    /// The PVC before the edit (the review's old object).
    pub pvc: PvcView,
    /// `spec.resources.requests.storage` after the edit, as written.
    pub requested: String,
    /// Every PVC of the namespace (quotas count them all).
    pub namespace_pvcs: Shared<PvcView>,
    pub quotas: Vec<QuotaView>,
    pub namespace_labels: BTreeMap<String, String>,
    /// The cluster's policies (at least those that apply in the namespace).
    pub policies: Vec<PolicyView>,
    pub options: RuleOptions,
}

/// The database a PVC belongs to by KubeDB's labels, if any.
pub fn pvc_database(pvc: &PvcView) -> Option<(DatabaseKind, &str)> {
    pvc.owner.as_ref().map(|o| (o.kind, &*o.instance))
}

/// Judges an edit of a PVC's storage request; anything but growth is allowed (the API server
/// refuses a shrink itself).
pub fn validate_pvc_growth(g: &PvcGrowth) -> Verdict {
    let Ok(after) = Quantity::parse(&g.requested) else {
        return Verdict::allow(Vec::new());
    };
    let pvc = &g.pvc;
    let before = pvc.request.as_ref().and_then(|q| q.nanos());
    if before.is_none_or(|b| after.nanos() <= b) {
        return Verdict::allow(Vec::new());
    }
    let what = format!("PVC {}/{}", g.namespace, pvc.name);
    // What it has now: its capacity (its request while it is not bound yet).
    let (current, source) = match (&pvc.capacity, &pvc.request) {
        (Some(c), _) if c.nanos().is_some() => (c, format!("capacity of {what}")),
        (_, Some(r)) => (r, format!("request of {what}")),
        _ => return Verdict::allow(Vec::new()),
    };
    let current = current.quantity();
    // KubeDB's ops-manager grows the volumes when it owns VolumeExpansion: judged by policy.
    let deny = g.options.direct_growth == DirectGrowth::Deny
        && g.options.volume_expansion_owner == crate::facts::VolumeExpansionOwner::Volops;
    if let (true, Some((kind, db))) = (deny, pvc_database(pvc)) {
        let from = current
            .as_ref()
            .map_or_else(|| "?".to_owned(), Quantity::to_string);
        return Verdict::deny(
            Denial::new(
                Rule::DirectGrowth,
                format!(
                    "{what} of {} {}/{db} cannot grow from {from} to {after} by editing it: the volumes of a database \
                     grow only through a {} with spec.type VolumeExpansion, which also updates its workloads and \
                     spec.storage (this cluster denies direct growth: volops webhook --direct-growth {})",
                    kind.kind(),
                    g.namespace,
                    kind.ops_kind(),
                    DirectGrowth::Deny.as_str()
                ),
            ),
            Vec::new(),
        );
    }
    let growth = policy::Growth {
        target: &after,
        current: current.map(|q| (q, source)),
        mode: VolumeExpansionMode::Online,
        classes: pvc.storage_class.as_deref().into_iter().collect(),
    };
    let subject = format!("growing {what} directly");
    let warnings = match policy::judge(&g.policies, &g.namespace_labels, &growth, &subject) {
        Ok(w) => w,
        Err(d) => return Verdict::deny(d, Vec::new()),
    };
    match quota::judge(&g.namespace, &g.quotas, &g.namespace_pvcs, &[pvc], after.nanos()) {
        Ok(w) => Verdict::allow(warnings.into_iter().chain(w).collect()),
        Err(d) => Verdict::deny(d, warnings),
    }
}
