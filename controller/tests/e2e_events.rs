//! The controller's event recorder against an API server: the first event is created, a
//! repeat counts into that event's series (a patch of `series` only), a different reason or
//! object is an event of its own (controller/src/events.rs).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k8s_openapi::api::{core::v1::ObjectReference, events::v1::Event as K8sEvent};
use kube::{
    Api,
    runtime::events::{Event, EventType, Reporter},
};
use support::*;
use volops_controller::events::EventRecorder;

fn event(reason: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: Some(format!("{reason} happened")),
        action: "Expand".into(),
        secondary: None,
    }
}

fn request(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("ops.kubedb.com/v1alpha1".into()),
        kind: Some("RedisOpsRequest".into()),
        name: Some(name.into()),
        namespace: Some("team".into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_event_is_one_object_whose_series_counts_the_repeats() {
    let (sb, admin) = sandbox().await;
    setup(&admin, "team", "standard", "online").await;
    let recorder = EventRecorder::new(admin.clone(), Reporter::from("volops-controller"));
    for _ in 0..3 {
        recorder
            .publish(&event("ResizeFailed"), &request("grow"))
            .await
            .unwrap();
    }
    recorder
        .publish(&event("Paused"), &request("grow"))
        .await
        .unwrap();
    recorder
        .publish(&event("ResizeFailed"), &request("other"))
        .await
        .unwrap();

    let mut seen = events_about(&admin, "team", "grow").await;
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("Warning".into(), "Paused".into(), "Paused happened".into(), 1),
            (
                "Warning".into(),
                "ResizeFailed".into(),
                "ResizeFailed happened".into(),
                3
            ),
        ]
    );
    assert_eq!(events_about(&admin, "team", "other").await.len(), 1);
    // The patch left the rest of the first event as it was created.
    let events: Api<K8sEvent> = Api::namespaced(admin.clone(), "team");
    let repeated = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.series.is_some())
        .expect("the repeated event");
    assert_eq!(
        repeated.reporting_controller.as_deref(),
        Some("volops-controller")
    );
    assert_eq!(repeated.action.as_deref(), Some("Expand"));
    let series = repeated.series.expect("a series");
    assert!(series.last_observed_time.0 >= repeated.event_time.expect("an event time").0);
    sb.shutdown().await.unwrap();
}
