//! Events are one store: what kube-rs's `Recorder` writes through `events.k8s.io/v1` is read
//! (get, list, watch, field selectors) through core `v1` Event with kube's field mapping, and the
//! reverse; field labels either API does not support are 400; events expire after the TTL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{start, start_with, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use k8s_openapi::api::events::v1::Event as EventsV1;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use serde_json::json;
use volops_sandbox::SandboxOptions;

fn reporter() -> Reporter {
    Reporter {
        controller: "volops-controller".into(),
        instance: Some("volops-controller-0".into()),
    }
}

#[tokio::test]
async fn recorder_events_are_core_events_and_core_events_are_events_v1() {
    let (_sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(&PostParams::default(), &common::cm("subject"))
        .await
        .unwrap();
    let other = cms
        .create(&PostParams::default(), &common::cm("other"))
        .await
        .unwrap();
    let recorder = Recorder::new(client.clone(), reporter());
    let ev = Event {
        type_: EventType::Warning,
        reason: "ExpansionStarted".into(),
        note: Some("growing data-rd-0 to 2Gi".into()),
        action: "Expand".into(),
        secondary: Some(other.object_ref(&())),
    };
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    // The same event again becomes a series (a merge patch through events.k8s.io).
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();

    // kubectl describe's query: core v1, by involvedObject.
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let sel = format!(
        "involvedObject.name=subject,involvedObject.namespace=default,involvedObject.kind=ConfigMap,involvedObject.uid={}",
        cm.uid().unwrap()
    );
    let found = core.list(&ListParams::default().fields(&sel)).await.unwrap();
    assert_eq!(found.items.len(), 1, "{found:?}");
    let e = &found.items[0];
    assert_eq!(e.message.as_deref(), Some("growing data-rd-0 to 2Gi"));
    assert_eq!(e.reason.as_deref(), Some("ExpansionStarted"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.action.as_deref(), Some("Expand"));
    assert_eq!(e.reporting_component.as_deref(), Some("volops-controller"));
    assert_eq!(e.reporting_instance.as_deref(), Some("volops-controller-0"));
    assert_eq!(e.involved_object.uid, cm.uid());
    assert_eq!(e.related.as_ref().unwrap().name.as_deref(), Some("other"));
    assert_eq!(e.series.as_ref().unwrap().count, Some(2));
    assert!(e.event_time.is_some());
    // `source` falls back to the reporting controller, as kube's selectable fields do.
    let by_source = core
        .list(&ListParams::default().fields("source=volops-controller,type=Warning"))
        .await
        .unwrap();
    assert_eq!(by_source.items.len(), 1);
    let none = core
        .list(&ListParams::default().fields("involvedObject.name=other"))
        .await
        .unwrap();
    assert!(none.items.is_empty());

    // The reverse: a core event written the old way is an events.k8s.io event.
    let old_style: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "legacy.1"},
        "involvedObject": {"apiVersion": "v1", "kind": "ConfigMap", "name": "other",
            "namespace": "default", "uid": other.uid()},
        "reason": "Legacy", "message": "posted through v1", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-01-02T03:04:05Z", "lastTimestamp": "2024-01-02T03:04:06Z",
        "count": 4
    }))
    .unwrap();
    core.create(&PostParams::default(), &old_style).await.unwrap();
    let v1: Api<EventsV1> = Api::namespaced(client.clone(), "default");
    let got = v1.get("legacy.1").await.unwrap();
    assert_eq!(got.note.as_deref(), Some("posted through v1"));
    assert_eq!(got.regarding.as_ref().unwrap().name.as_deref(), Some("other"));
    let src = got.deprecated_source.unwrap();
    assert_eq!(
        (src.component.as_deref(), src.host.as_deref()),
        (Some("kubelet"), Some("node-1"))
    );
    assert_eq!(got.deprecated_count, Some(4));
    assert_eq!(
        got.deprecated_first_timestamp.unwrap().0.to_string(),
        "2024-01-02T03:04:05Z"
    );
    let by_regarding = v1
        .list(&ListParams::default().fields("regarding.name=other,reason=Legacy"))
        .await
        .unwrap();
    assert_eq!(by_regarding.items.len(), 1);
    let by_controller = v1
        .list(&ListParams::default().fields("reportingController=volops-controller"))
        .await
        .unwrap();
    assert_eq!(by_controller.items.len(), 1);
    assert_eq!(by_controller.items[0].reason.as_deref(), Some("ExpansionStarted"));

    // Labels the API does not know are kube's 400.
    let (code, reason, msg) = status(core.list(&ListParams::default().fields("regarding.name=x")).await);
    assert_eq!(
        (code, reason.as_str(), msg.as_str()),
        (400, "BadRequest", "field label not supported: regarding.name")
    );
    let (code, _, msg) = status(v1.list(&ListParams::default().fields("note=x")).await);
    assert_eq!((code, msg.as_str()), (400, "field label not supported: note"));
}

#[tokio::test]
async fn a_watch_on_one_event_api_sees_writes_through_the_other() {
    let (_sb, client) = start().await;
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let mut watch = core
        .watch(&WatchParams::default().fields("involvedObject.name=subject"), "0")
        .await
        .unwrap()
        .boxed();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(&PostParams::default(), &common::cm("subject"))
        .await
        .unwrap();
    Recorder::new(client.clone(), reporter())
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Seen".into(),
                note: Some("through events.k8s.io".into()),
                action: "Watch".into(),
                secondary: None,
            },
            &cm.object_ref(&()),
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), watch.try_next())
        .await
        .unwrap()
        .unwrap();
    match ev {
        Some(WatchEvent::Added(e)) => {
            assert_eq!(e.message.as_deref(), Some("through events.k8s.io"));
            assert_eq!(e.involved_object.name.as_deref(), Some("subject"));
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
}

#[tokio::test]
async fn events_expire_after_the_event_ttl() {
    let (_sb, client) = start_with(SandboxOptions {
        event_ttl: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let mut watch = core.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let ev: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "short-lived"},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
        "reason": "R", "message": "m", "type": "Normal"
    }))
    .unwrap();
    core.create(&PostParams::default(), &ev).await.unwrap();
    let mut kinds = vec![];
    while kinds.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), watch.try_next())
            .await
            .expect("the event expires within the TTL and a reap interval")
            .unwrap()
        {
            Some(WatchEvent::Added(_)) => kinds.push("ADDED"),
            Some(WatchEvent::Deleted(e)) => {
                assert_eq!(e.name_any(), "short-lived");
                kinds.push("DELETED");
            }
            Some(_) => {}
            None => panic!("watch ended"),
        }
    }
    assert_eq!(kinds, ["ADDED", "DELETED"]);
    let (code, _, _) = status(core.get("short-lived").await);
    assert_eq!(code, 404);
    // Other resources have no TTL.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &common::cm("stays"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cms.get("stays").await.is_ok());
}
