//! Watch streams: replay from a resourceVersion (or a synthetic list), then live events,
//! bookmarks, timeouts, selector transitions, 410 as an ERROR event, injected cuts.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::{Api, Req, error_response, stream_response};
use crate::meta::output_ref;
use crate::ops::selectors;
use crate::route::Target;
use crate::selectors::Selectors;
use crate::store::{Event, EventType};
use crate::wire::negotiate::Format;

/// Longest watch when the client sets no timeout (kube uses 30-60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Most events sent in one chunk.
const MAX_BATCH: usize = 256;

struct WatchParams {
    sel: Selectors,
    ns: Option<String>,
    bookmarks: bool,
    table: bool,
    timeout: Duration,
    query: std::collections::HashMap<String, String>,
    /// Length-prefixed protobuf frames instead of JSON lines.
    proto: bool,
}

pub fn serve(api: Arc<Api>, t: Target, req: &Req, format: Format) -> Response {
    let sel = match selectors(req, &t.info) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let from = match req.q("resourceVersion") {
        None | Some("0") => None,
        Some(rv) => match rv.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error_response(&crate::machinery::ApiError::bad_request(&format!(
                    "invalid resource version: {rv:?}"
                )));
            }
        },
    };
    let params = WatchParams {
        sel,
        ns: t.ns.clone(),
        bookmarks: req.flag("allowWatchBookmarks"),
        table: req.wants_table(),
        timeout: req
            .q("timeoutSeconds")
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT),
        query: req.query.clone(),
        proto: format == Format::Protobuf,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let content_type = if params.proto {
        "application/vnd.kubernetes.protobuf;stream=watch"
    } else if params.table {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    match api.store.watch(&t.info.store_key(), t.ns.as_deref(), from) {
        Err(e) => {
            // kube-apiserver answers 200 and sends the 410 as an ERROR event.
            let mut status = e.to_status_json();
            status["apiVersion"] = json!("v1");
            status["kind"] = json!("Status");
            let _ = tx.try_send(Ok(event_bytes(&params, "ERROR", &status)));
        }
        Ok(start) => {
            tokio::spawn(run(api, t, params, start.initial, start.rx, tx));
        }
    }
    stream_response(
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
        content_type,
    )
}

/// One event on the wire: a JSON line, or a protobuf frame.
fn event_bytes(p: &WatchParams, kind: &str, object: &Value) -> Bytes {
    if p.proto {
        return match crate::wire::watch_frame(kind, object) {
            Ok(frame) => Bytes::from(frame),
            Err(e) => {
                tracing::warn!("watch event has no protobuf form: {e}");
                Bytes::new()
            }
        };
    }
    line_bytes(&json!({"type": kind, "object": object}))
}

fn line_bytes(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// The event type this watcher sees, given its selectors (kube turns objects leaving the
/// selection into DELETED and entering it into ADDED).
fn visible(p: &WatchParams, ev: &Event) -> Option<&'static str> {
    let in_ns = |o: &Value| {
        p.ns.as_deref()
            .is_none_or(|n| o["metadata"]["namespace"].as_str().unwrap_or("") == n)
    };
    if !in_ns(&ev.object) {
        return None;
    }
    let now = p.sel.matches(&ev.object);
    let before = ev.old.as_ref().is_some_and(|o| p.sel.matches(o));
    match (ev.kind, before, now) {
        (EventType::Added, _, true) => Some("ADDED"),
        (EventType::Modified, true, true) => Some("MODIFIED"),
        (EventType::Modified, false, true) => Some("ADDED"),
        (EventType::Modified, true, false) => Some("DELETED"),
        (EventType::Deleted, _, true) => Some("DELETED"),
        _ => None,
    }
}

/// One watch event on the wire, serialised straight from the stored object.
#[derive(serde::Serialize)]
struct WatchLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: std::borrow::Cow<'a, Value>,
}

fn render(p: &WatchParams, t: &Target, kind: &str, ev: &Event) -> Bytes {
    if p.table {
        let obj = &ev.object;
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let opts = crate::table::TableOpts::from_query(&p.query);
        let table = crate::table::table_with(&t.info, std::slice::from_ref(obj), &rv, &opts);
        return line_bytes(&json!({"type": kind, "object": table}));
    }
    // Most watchers of a resource see the same line: build it once per event.
    let key = format!("{kind}|{}|{}", t.info.api_version(), p.proto);
    let mut cache = ev.rendered.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, b)) = cache.iter().find(|(k, _)| *k == key) {
        return b.clone();
    }
    let b = if p.proto {
        event_bytes(p, kind, &output_ref(&t.info, &ev.object))
    } else {
        let line = WatchLine {
            kind,
            object: output_ref(&t.info, &ev.object),
        };
        let mut b = serde_json::to_vec(&line).unwrap_or_default();
        b.push(b'\n');
        Bytes::from(b)
    };
    cache.push((key, b.clone()));
    b
}

async fn run(
    api: Arc<Api>,
    t: Target,
    p: WatchParams,
    initial: Vec<Arc<Event>>,
    mut rx: broadcast::Receiver<Arc<Event>>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut last_rv = 0u64;
    for ev in initial {
        last_rv = last_rv.max(ev.rv);
        if let Some(kind) = visible(&p, &ev)
            && tx.send(Ok(render(&p, &t, kind, &ev))).await.is_err()
        {
            return;
        }
    }
    let deadline = tokio::time::Instant::now() + p.timeout;
    let started = tokio::time::Instant::now();
    // Fault config may change while the stream is open; check it a few times a second.
    let mut cut_check = tokio::time::interval(Duration::from_millis(100));
    let mut bookmark = tokio::time::interval(api.bookmark_interval);
    bookmark.reset();
    let mut shutdown = api.shutdown.clone();
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(first) => {
                    // Batch whatever is already queued into one chunk: far fewer TLS records
                    // and wake-ups when many watchers follow a busy resource.
                    let mut out: Vec<u8> = Vec::new();
                    let mut next = Some(first);
                    let mut batched = 0;
                    while let Some(ev) = next.take() {
                        if ev.rv > last_rv {
                            last_rv = ev.rv;
                            if let Some(kind) = visible(&p, &ev) {
                                out.extend_from_slice(&render(&p, &t, kind, &ev));
                            }
                        }
                        batched += 1;
                        if batched < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(e) => next = Some(e),
                                Err(broadcast::error::TryRecvError::Empty) => {}
                                Err(_) => return,
                            }
                        }
                    }
                    if !out.is_empty() && tx.send(Ok(Bytes::from(out))).await.is_err() {
                        return;
                    }
                }
                // Too slow a reader or the bucket is gone: end the stream; the client
                // re-watches from its last resourceVersion.
                Err(_) => return,
            },
            _ = bookmark.tick(), if p.bookmarks => {
                if let Some(rv) = api.store.bookmark_rv(&rx) {
                    let mut obj = json!({
                        "kind": t.info.kind, "apiVersion": t.info.api_version(),
                        "metadata": {"resourceVersion": rv.to_string()}
                    });
                    if p.table {
                        obj = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                            "metadata": {"resourceVersion": rv.to_string()}, "columnDefinitions": [], "rows": []});
                    }
                    if tx.send(Ok(event_bytes(&p, "BOOKMARK", &obj))).await.is_err() {
                        return;
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline) => return,
            _ = cut_check.tick() => {
                if api.faults.watch_cut().is_some_and(|d| started.elapsed() >= d) {
                    // An injected cut looks like a dropped connection, not a clean end.
                    let _ = tx.send(Err(std::io::Error::other("watch cut (injected fault)"))).await;
                    return;
                }
            },
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
        }
    }
}
