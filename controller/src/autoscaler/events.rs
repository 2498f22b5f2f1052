//! Events on the autoscaler, published in the background as the ops steps publish theirs, and
//! only when the decision's reason changes (a wait that lasts hours is one Event, not one per
//! interval).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use volops_shared::autoscale::{Blocked, Decision, WaitReason};

use super::request::Owner;
use crate::context::Ctx;

/// The Event a decision deserves, as (type, reason), if any.
pub fn event_of(d: &Decision) -> Option<(EventType, &'static str)> {
    match d {
        Decision::Expand(e) if e.emergency => Some((EventType::Warning, "EmergencyExpansion")),
        Decision::Expand(e) if e.clamp.is_some() => Some((EventType::Warning, "ExpansionClamped")),
        Decision::Expand(_) => Some((EventType::Normal, "ExpansionRequested")),
        Decision::Wait {
            reason: WaitReason::FailedBackoff { .. },
            ..
        } => Some((EventType::Warning, "BackingOff")),
        Decision::Wait {
            reason: WaitReason::MinInterval { .. },
            ..
        } => Some((EventType::Normal, "MinInterval")),
        Decision::Blocked(Blocked::AtLimit { .. }) => Some((EventType::Warning, "AtLimit")),
        Decision::Blocked(Blocked::Forbidden { .. }) => Some((EventType::Warning, "Forbidden")),
        Decision::Blocked(Blocked::InvalidSpec(_)) => Some((EventType::Warning, "InvalidSpec")),
        _ => None,
    }
}

/// Publishes `note` about the autoscaler in the background.
pub fn publish(ctx: &Ctx, owner: &Owner, type_: EventType, reason: &str, note: String) {
    let ar = super::watch::autoscaler_resource(owner.kind);
    let reference = ObjectReference {
        api_version: Some(ar.api_version),
        kind: Some(ar.kind),
        name: Some(owner.name.clone()),
        namespace: Some(owner.namespace.clone()),
        uid: Some(owner.uid.clone()),
        ..Default::default()
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Autoscale".into(),
        secondary: None,
    };
    let recorder = ctx.recorder.clone();
    let who = format!("{}/{}", owner.namespace, owner.name);
    tokio::spawn(async move {
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::debug!(autoscaler = %who, error = %e, "event not published");
        }
    });
}
