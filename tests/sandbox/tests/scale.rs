//! 10,000 objects and 100 concurrent watchers in one process: generous bounds, figures printed
//! (run with --nocapture to see them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{cm, raw_client, start_with};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use volops_sandbox::SandboxOptions;

const OBJECTS: usize = 10_000;
const WATCHERS: usize = 100;

/// Counts watch lines (events) on a raw stream, re-watching from the last seen
/// resourceVersion if the server ends the stream (e.g. a slow reader).
async fn count_events(http: reqwest::Client, url: String, start_rv: String, want: usize) -> Instant {
    let mut seen = 0usize;
    let mut rv = start_rv;
    loop {
        let mut resp = http
            .get(format!("{url}&resourceVersion={rv}"))
            .send()
            .await
            .unwrap();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                seen += 1;
                if seen == want {
                    return Instant::now();
                }
                // Only parse the rv when a re-watch might need it (cheap enough every 1000).
                if seen.is_multiple_of(1000) || buf.is_empty() {
                    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
                    if let Some(r) = v["object"]["metadata"]["resourceVersion"].as_str() {
                        rv = r.to_string();
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_objects_hundred_watchers() {
    let (sb, client) = start_with(SandboxOptions::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let http = raw_client(&sb);
    let url = format!("{}/api/v1/namespaces/default/configmaps?watch=true", sb.url());
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| tokio::spawn(count_events(http.clone(), url.clone(), rv.clone(), OBJECTS)))
        .collect();

    let t0 = Instant::now();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let cms = cms.clone();
            async move {
                cms.create(&PostParams::default(), &cm(&format!("obj-{i:05}")))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let create = t0.elapsed();

    let mut last = t0;
    for w in watchers {
        let done = tokio::time::timeout(Duration::from_secs(240), w)
            .await
            .expect("watchers finish")
            .unwrap();
        last = last.max(done);
    }
    let fanout_after_last_create = last.saturating_duration_since(t0 + create);

    let t1 = Instant::now();
    let list = cms.list(&ListParams::default()).await.unwrap();
    let list_time = t1.elapsed();
    assert_eq!(list.items.len(), OBJECTS);

    let t2 = Instant::now();
    let sel = cms
        .list(&ListParams::default().fields("metadata.name=obj-04242"))
        .await
        .unwrap();
    let select_time = t2.elapsed();
    assert_eq!(sel.items.len(), 1);

    println!(
        "scale: {OBJECTS} creates in {:.2}s ({:.0}/s, 32 in flight); {WATCHERS} watchers x {OBJECTS} events = {} events, \
         all delivered {:.2}s after the first create ({:.2}s after the last); full list {:.0} ms; field-selected list {:.0} ms",
        create.as_secs_f64(),
        OBJECTS as f64 / create.as_secs_f64(),
        OBJECTS * WATCHERS,
        last.duration_since(t0).as_secs_f64(),
        fanout_after_last_create.as_secs_f64(),
        list_time.as_secs_f64() * 1000.0,
        select_time.as_secs_f64() * 1000.0,
    );
    // Generous bounds: pathological slowness only.
    assert!(create < Duration::from_secs(90), "creates took {create:?}");
    assert!(list_time < Duration::from_secs(10), "list took {list_time:?}");
}
