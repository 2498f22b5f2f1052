//! list (selectors, pagination) and watch (events, bookmarks, timeouts, 410, cuts), also
//! through kube::runtime::watcher.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{cm, raw_client, start, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use volops_sandbox::{FaultConfig, FaultRule};

fn labelled(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

fn names(list: kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items.into_iter().filter_map(|c| c.metadata.name).collect()
}

#[tokio::test]
async fn label_field_selectors_and_pagination() {
    let (_sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &labelled("a", json!({"app": "web", "tier": "fe"})),
    )
    .await
    .unwrap();
    cms.create(&PostParams::default(), &labelled("b", json!({"app": "db"})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &labelled("c", json!({})))
        .await
        .unwrap();
    let sel = |s: &str| ListParams::default().labels(s);
    let cases = [
        ("app=web", vec!["a"]),
        ("app==db", vec!["b"]),
        ("app!=web", vec!["b", "c"]),
        ("app in (web,db)", vec!["a", "b"]),
        ("app notin (web)", vec!["b", "c"]),
        ("tier", vec!["a"]),
        ("!app", vec!["c"]),
    ];
    for (s, want) in cases {
        assert_eq!(names(cms.list(&sel(s)).await.unwrap()), want, "{s}");
    }
    let by_name = ListParams::default().fields("metadata.name=b");
    assert_eq!(names(cms.list(&by_name).await.unwrap()), vec!["b"]);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let by_ns = ListParams::default().fields("metadata.namespace=default");
    assert_eq!(names(all.list(&by_ns).await.unwrap()).len(), 3);
    let (code, reason, _) = status(cms.list(&sel("app in web")).await);
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));

    // Pods by status.phase.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for n in ["p1", "p2"] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": n},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    pods.patch_status(
        "p2",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    let running = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap();
    assert_eq!(running.items.len(), 1);
    assert_eq!(running.items[0].metadata.name.as_deref(), Some("p2"));

    // limit/continue walks everything exactly once.
    for i in 0..7 {
        cms.create(&PostParams::default(), &cm(&format!("page-{i}")))
            .await
            .unwrap();
    }
    let mut seen = vec![];
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = cms.list(&lp).await.unwrap();
        assert!(page.items.len() <= 3);
        let cont = page.metadata.continue_.clone();
        seen.extend(names(page));
        match cont {
            Some(c) if !c.is_empty() => lp = ListParams::default().limit(3).continue_token(&c),
            _ => break,
        }
    }
    let mut expect: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    expect.extend((0..7).map(|i| format!("page-{i}")));
    expect.sort();
    assert_eq!(seen, expect);
}

#[tokio::test]
async fn watch_events_bookmarks_selectors_and_timeout() {
    let (_sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let list = cms.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut wp = WatchParams::default().labels("app=x").timeout(5);
    wp.bookmarks = true;
    let mut stream = cms.watch(&wp, &rv).await.unwrap().boxed();
    cms.create(&PostParams::default(), &cm("w")).await.unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    // Leaving the selection is seen as DELETED, coming back as ADDED.
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    cms.delete("w", &Default::default()).await.unwrap();
    let mut kinds = vec![];
    let mut bookmark = false;
    let mut last_rv = 0u64;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) if kinds.len() < 5 => {
                let r: u64 = o.metadata.resource_version.clone().unwrap().parse().unwrap();
                assert!(r > last_rv, "resourceVersions increase");
                last_rv = r;
                kinds.push(ev_kind_name(&o, kinds.len()));
            }
            WatchEvent::Bookmark(b) => {
                assert!(b.metadata.resource_version.parse::<u64>().unwrap() >= last_rv);
                bookmark = true;
                if kinds.len() == 5 {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds.len(), 5);
    assert!(bookmark);

    // timeoutSeconds ends the stream cleanly.
    let wp = WatchParams::default().timeout(1);
    let started = std::time::Instant::now();
    let mut s = cms.watch(&wp, "0").await.unwrap().boxed();
    while tokio::time::timeout(Duration::from_secs(10), s.try_next())
        .await
        .unwrap()
        .unwrap()
        .is_some()
    {}
    assert!(started.elapsed() >= Duration::from_millis(900));
}

fn ev_kind_name(o: &ConfigMap, _i: usize) -> String {
    o.metadata.name.clone().unwrap_or_default()
}

#[tokio::test]
async fn watch_event_types_in_order() {
    let (sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("first")).await.unwrap();
    // Raw stream so the wire types are visible.
    let http = raw_client(&sb);
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=true&labelSelector=app%3Dx&resourceVersion=0",
        sb.url()
    );
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let c2 = cms.clone();
    tokio::spawn(async move {
        c2.create(&PostParams::default(), &cm("w")).await.unwrap();
        c2.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
        )
        .await
        .unwrap();
        c2.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
        )
        .await
        .unwrap();
        c2.patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "b"}})),
        )
        .await
        .unwrap();
        c2.delete("w", &Default::default()).await.unwrap();
    });
    let mut buf = Vec::new();
    let mut types = vec![];
    while types.len() < 6 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            types.push(format!(
                "{}:{}",
                v["type"].as_str().unwrap(),
                v["object"]["metadata"]["name"].as_str().unwrap()
            ));
        }
    }
    assert_eq!(
        types,
        vec![
            "ADDED:first",
            "ADDED:w",
            "DELETED:w",
            "ADDED:w",
            "MODIFIED:w",
            "DELETED:w"
        ]
    );
}

#[tokio::test]
async fn too_old_resource_version_is_410_error_event() {
    let (_sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .create(&PostParams::default(), &cm("old"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // The test sandbox keeps 50 events per resource.
    for i in 0..60 {
        cms.patch(
            "old",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let mut s = cms.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    match s.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

/// Collects configmap names the watcher reports until `want` are all seen; counts re-lists.
async fn watch_until(
    stream: &mut (impl futures::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin),
    want: &BTreeSet<String>,
    seen: &mut BTreeSet<String>,
    inits: &mut usize,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !want.is_subset(seen) {
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("watcher stalled");
        match ev {
            Some(Ok(watcher::Event::Init)) => *inits += 1,
            Some(Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o))) => {
                seen.insert(o.metadata.name.unwrap());
            }
            Some(Ok(_)) | Some(Err(_)) => {}
            None => panic!("watcher ended"),
        }
    }
}

#[tokio::test]
async fn runtime_watcher_survives_dropped_streams_and_410() {
    let (sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut seen = BTreeSet::new();
    let mut inits = 0;
    cms.create(&PostParams::default(), &cm("start")).await.unwrap();
    watch_until(&mut stream, &["start".to_string()].into(), &mut seen, &mut inits).await;
    assert_eq!(inits, 1);

    // Streams are cut every second: the watcher resumes from its resourceVersion (no re-list).
    sb.faults().set(FaultConfig {
        watch_cut_seconds: 1,
        ..Default::default()
    });
    let mut want = BTreeSet::new();
    for i in 0..5 {
        let n = format!("cut-{i}");
        cms.create(&PostParams::default(), &cm(&n)).await.unwrap();
        want.insert(n);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    watch_until(&mut stream, &want, &mut seen, &mut inits).await;
    assert_eq!(inits, 1, "a cut stream is resumed, not re-listed");

    // While re-watching fails, the history (50 events) overflows: the next watch gets 410
    // and the watcher re-lists, still seeing everything.
    sb.faults().set(FaultConfig {
        watch_cut_seconds: 1,
        rules: vec![FaultRule {
            verb: "watch".into(),
            resource: "configmaps".into(),
            rate: 1.0,
            code: 500,
            retry_after_seconds: 1,
        }],
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut want = BTreeSet::new();
    for i in 0..80 {
        let n = format!("gone-{i}");
        cms.create(&PostParams::default(), &cm(&n)).await.unwrap();
        want.insert(n);
    }
    sb.faults().clear();
    watch_until(&mut stream, &want, &mut seen, &mut inits).await;
    assert!(inits >= 2, "410 forces a re-list (inits = {inits})");
}
