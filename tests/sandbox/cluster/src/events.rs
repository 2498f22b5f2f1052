//! core/v1 Events, as the real components post them.

use crate::util::now;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The object an event is about.
pub struct Involved<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub resource_version: Option<&'a str>,
}

/// Posts an event; failures are only logged (real recorders drop events too).
pub async fn emit(
    client: &kube::Client,
    component: &str,
    about: Involved<'_>,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let stamp = jiff::Timestamp::now();
    let ev = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}{:04x}",
                about.name,
                stamp.as_nanosecond(),
                seq % 0x10000
            )),
            namespace: Some(about.namespace.to_owned()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(about.api_version.to_owned()),
            kind: Some(about.kind.to_owned()),
            namespace: Some(about.namespace.to_owned()),
            name: Some(about.name.to_owned()),
            uid: Some(about.uid.to_owned()),
            resource_version: about.resource_version.map(str::to_owned),
            ..Default::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        type_: Some(if warning { "Warning" } else { "Normal" }.to_owned()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        reporting_component: Some(component.to_owned()),
        reporting_instance: Some(format!("{component}-sandbox")),
        first_timestamp: Some(now()),
        last_timestamp: Some(now()),
        count: Some(1),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), about.namespace);
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(error = %e, reason, "posting event failed");
    }
}
