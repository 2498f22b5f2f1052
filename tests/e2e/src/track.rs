//! Continuous invariants from watches: how many pods of a database were missing at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

/// Watches the pods matching `selector` in `ns` and records the most that were missing at
/// once out of `expected` (counted after the initial list). Stops when dropped.
#[derive(Debug)]
pub struct MissingPods {
    max: Arc<AtomicUsize>,
    events: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl MissingPods {
    pub fn start(client: kube::Client, ns: &str, selector: &str, expected: usize) -> Self {
        let pods: Api<Pod> = Api::namespaced(client, ns);
        let stream = watcher(pods, watcher::Config::default().labels(selector)).default_backoff();
        let (max, events) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (m, n) = (max.clone(), events.clone());
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            // During a relist the set is rebuilt in `pending`, so a relist is never a gap.
            let (mut present, mut pending) = (BTreeSet::new(), BTreeSet::new());
            let mut listed = false;
            while let Some(ev) = stream.next().await {
                let Ok(ev) = ev else { continue };
                n.fetch_add(1, Ordering::Relaxed);
                match ev {
                    watcher::Event::Init => pending.clear(),
                    watcher::Event::InitApply(p) => {
                        pending.insert(p.name_any());
                    }
                    watcher::Event::InitDone => {
                        present = std::mem::take(&mut pending);
                        listed = true;
                    }
                    watcher::Event::Apply(p) => {
                        present.insert(p.name_any());
                    }
                    watcher::Event::Delete(p) => {
                        present.remove(&p.name_any());
                    }
                }
                if listed {
                    m.fetch_max(expected.saturating_sub(present.len()), Ordering::SeqCst);
                }
            }
        });
        Self { max, events, task }
    }

    /// The most pods missing at once so far.
    pub fn max_missing(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    /// Watch events seen (to show the tracker was alive).
    pub fn events(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }
}

impl Drop for MissingPods {
    fn drop(&mut self) {
        self.task.abort();
    }
}
