//! The watch history is a bounded window, like kube-apiserver's watch cache: many writes (and
//! deletes) leave at most `watch_history` events per resource, older events age out, and a watch
//! or an exact list from before the window is `410 Expired` with kube's message. (A kube-runtime
//! watcher re-listing after such a 410 is `api_list_watch::runtime_watcher_survives_dropped_streams_and_410`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{cm, start, start_with, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent, WatchParams,
};
use serde_json::json;
use volops_sandbox::SandboxOptions;

fn rv_of(c: &ConfigMap) -> u64 {
    c.metadata.resource_version.as_deref().unwrap().parse().unwrap()
}

async fn set(cms: &Api<ConfigMap>, name: &str, i: usize) -> u64 {
    let c = cms
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    rv_of(&c)
}

/// The first event of a watch from `rv`.
async fn first_event(cms: &Api<ConfigMap>, rv: u64) -> WatchEvent<ConfigMap> {
    let wp = WatchParams::default().timeout(2);
    let mut s = cms.watch(&wp, &rv.to_string()).await.unwrap().boxed();
    tokio::time::timeout(Duration::from_secs(10), s.try_next())
        .await
        .unwrap()
        .unwrap()
        .expect("an event")
}

#[tokio::test]
async fn writes_past_the_window_make_old_versions_expire() {
    // The test sandbox keeps 50 events per resource.
    let (sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = rv_of(&cms.create(&PostParams::default(), &cm("w")).await.unwrap());
    let mut rvs = vec![first];
    for i in 0..200 {
        rvs.push(set(&cms, "w", i).await);
    }
    assert_eq!(sb.watch_history_len("", "configmaps"), 50);
    let last = *rvs.last().unwrap();
    // The window holds the last 50 changes: a watch from the version before them still works.
    let oldest_servable = rvs[rvs.len() - 51];
    match first_event(&cms, oldest_servable).await {
        WatchEvent::Modified(c) => assert_eq!(rv_of(&c), rvs[rvs.len() - 50]),
        other => panic!("expected the next change, got {other:?}"),
    }
    let too_old = rvs[rvs.len() - 52];
    match first_event(&cms, too_old).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert_eq!(
                e.message,
                format!("too old resource version: {too_old} ({oldest_servable})")
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }

    // An exact list inside the window is the state at that version; before it, 410.
    let mid = rvs[rvs.len() - 10];
    let lp = ListParams::default()
        .at(&mid.to_string())
        .matching(VersionMatch::Exact);
    let list = cms.list(&lp).await.unwrap();
    assert_eq!(
        list.metadata.resource_version.as_deref(),
        Some(mid.to_string().as_str())
    );
    let at_mid = &list.items[0];
    assert_eq!(rv_of(at_mid), mid);
    assert_eq!(at_mid.data.as_ref().unwrap()["i"], (200 - 10).to_string());
    let lp = ListParams::default()
        .at(&first.to_string())
        .matching(VersionMatch::Exact);
    let (code, reason, msg) = status(cms.list(&lp).await);
    assert_eq!((code, reason.as_str()), (410, "Expired"));
    assert_eq!(
        msg,
        format!("too old resource version: {first} ({oldest_servable})")
    );
    assert!(last > mid);
}

#[tokio::test]
async fn deleted_objects_leave_no_tombstones_beyond_the_window() {
    let (sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let before_any = rv_of(&cms.create(&PostParams::default(), &cm("keep")).await.unwrap());
    for i in 0..150 {
        let n = format!("gone-{i}");
        cms.create(&PostParams::default(), &cm(&n)).await.unwrap();
        cms.delete(&n, &DeleteParams::default()).await.unwrap();
    }
    assert_eq!(sb.watch_history_len("", "configmaps"), 50);
    assert_eq!(cms.list(&ListParams::default()).await.unwrap().items.len(), 1);
    // The deletions are no longer replayable: a watch from before them is told to re-list.
    match first_event(&cms, before_any).await {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn old_history_ages_out_beyond_the_newest_hundred_events() {
    let (sb, client) = start_with(SandboxOptions {
        watch_history: 10_000,
        watch_history_age: Duration::from_millis(500),
        ..Default::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    for i in 0..300 {
        set(&cms, "a", i).await;
    }
    // Even a quiet resource drops what is older than the age bound (the reaper trims).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sb.watch_history_len("", "configmaps") > 100 {
        assert!(tokio::time::Instant::now() < deadline, "history never aged out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sb.watch_history_len("", "configmaps"), 100);
}
