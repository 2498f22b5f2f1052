//! A tiny shared-informer + work-queue runtime (like client-go's): one watch per resource kind,
//! the store is updated BEFORE handlers run, so a reconcile triggered by an event always sees
//! that event in the store.

use crate::pause::PauseSwitch;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::{HashSet, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// What a handler is told about.
pub enum Change<'a, K> {
    /// Added or modified.
    Applied(&'a K),
    /// Deleted (also synthesised after a relist for objects that vanished meanwhile).
    Deleted(&'a K),
}

type Handler<K> = Box<dyn Fn(Change<'_, K>) + Send + Sync>;

/// One watch, one store, many handlers.
pub struct Informer<K: Resource + Clone + 'static>
where
    K::DynamicType: Eq + Hash + Clone,
{
    api: Api<K>,
    dyntype: K::DynamicType,
    store: Store<K>,
    writer: reflector::store::Writer<K>,
    handlers: Vec<Handler<K>>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    /// An informer over `api`.
    pub fn new(api: Api<K>, dyntype: K::DynamicType) -> Self {
        let writer = reflector::store::Writer::new(dyntype.clone());
        Self {
            api,
            dyntype,
            store: writer.as_reader(),
            writer,
            handlers: Vec::new(),
        }
    }

    /// The (eventually) complete store.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Adds a handler, called after the store has the change.
    pub fn on(&mut self, handler: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        self.handlers.push(Box::new(handler));
    }

    /// Runs the watch on `tasks`.
    pub fn spawn(self, tasks: &mut JoinSet<()>) {
        let Self {
            api,
            dyntype,
            store,
            mut writer,
            handlers,
        } = self;
        tasks.spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
            let mut before_relist: Vec<Arc<K>> = Vec::new();
            while let Some(ev) = stream.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::debug!(error = %e, "watch error, backing off");
                        continue;
                    }
                };
                if matches!(ev, watcher::Event::Init) {
                    before_relist = store.state();
                }
                writer.apply_watcher_event(&ev);
                match &ev {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        handlers.iter().for_each(|h| h(Change::Applied(o)));
                    }
                    watcher::Event::Delete(o) => handlers.iter().for_each(|h| h(Change::Deleted(o))),
                    watcher::Event::InitDone => {
                        for gone in before_relist.drain(..) {
                            let key = ObjectRef::from_obj_with(gone.as_ref(), dyntype.clone());
                            if store.get(&key).is_none() {
                                handlers.iter().for_each(|h| h(Change::Deleted(gone.as_ref())));
                            }
                        }
                    }
                    watcher::Event::Init => {}
                }
            }
        });
    }
}

/// Namespace + name of the object a queue item is about ("" namespace for cluster scope).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub ns: String,
    pub name: String,
}

impl Key {
    /// Key from parts.
    pub fn new(ns: &str, name: &str) -> Self {
        Self {
            ns: ns.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Key of an object.
    pub fn of<K: Resource>(obj: &K) -> Self {
        Self::new(obj.namespace().as_deref().unwrap_or(""), &obj.name_any())
    }

    /// Store lookup reference.
    pub fn obj_ref<K: Resource>(&self, dyntype: K::DynamicType) -> ObjectRef<K> {
        let r = ObjectRef::new_with(&self.name, dyntype);
        if self.ns.is_empty() { r } else { r.within(&self.ns) }
    }
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<Key>,
    queued: HashSet<Key>,
    processing: HashSet<Key>,
    dirty: HashSet<Key>,
}

/// Deduplicating work queue: a key is never processed by two workers at once, and a key added
/// while it is processed is processed again afterwards.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<QueueState>>,
    notify: Arc<Notify>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panicking holder cannot leave the sets inconsistent in a harmful way.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a key (no-op if it is already waiting).
    pub fn add(&self, key: Key) {
        let mut st = self.lock();
        if st.queued.contains(&key) {
            return;
        }
        if st.processing.contains(&key) {
            st.dirty.insert(key);
            return;
        }
        st.queued.insert(key.clone());
        st.queue.push_back(key);
        drop(st);
        self.notify.notify_one();
    }

    /// Adds a key after `delay`.
    pub fn add_after(&self, key: Key, delay: Duration) {
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Waits for the next key and marks it processing.
    pub async fn next(&self) -> Key {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if let Some(k) = st.queue.pop_front() {
                    st.queued.remove(&k);
                    st.processing.insert(k.clone());
                    if !st.queue.is_empty() {
                        // Wake another worker for the rest.
                        self.notify.notify_one();
                    }
                    return k;
                }
            }
            notified.await;
        }
    }

    /// Marks a key done; re-queues it if it was added meanwhile.
    pub fn done(&self, key: &Key) {
        let mut st = self.lock();
        st.processing.remove(key);
        if st.dirty.remove(key) && st.queued.insert(key.clone()) {
            st.queue.push_back(key.clone());
            drop(st);
            self.notify.notify_one();
        }
    }

    /// Number of keys waiting (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `workers` loops taking keys from `queue`. The reconciler returns `Some(delay)` to be
/// called again after `delay` even without an event. Errors requeue after 250 ms.
pub fn spawn_workers<F, Fut>(
    tasks: &mut JoinSet<()>,
    name: &'static str,
    queue: Queue,
    workers: usize,
    pause: PauseSwitch,
    reconcile: F,
) where
    F: Fn(Key) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Option<Duration>, crate::error::Error>> + Send + 'static,
{
    for _ in 0..workers {
        let queue = queue.clone();
        let pause = pause.clone();
        let reconcile = reconcile.clone();
        tasks.spawn(async move {
            loop {
                let key = queue.next().await;
                pause.wait_running().await;
                match reconcile(key.clone()).await {
                    Ok(Some(delay)) => queue.add_after(key.clone(), delay),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(controller = name, key = ?key, error = %e, "reconcile failed");
                        queue.add_after(key.clone(), Duration::from_millis(250));
                    }
                }
                queue.done(&key);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_dedups_and_requeues_dirty_keys() {
        let q = Queue::default();
        q.add(Key::new("a", "x"));
        q.add(Key::new("a", "x"));
        q.add(Key::new("a", "y"));
        assert_eq!(q.len(), 2, "duplicate add is a no-op");
        let first = q.next().await;
        assert_eq!(first, Key::new("a", "x"));
        // Added while processing: not handed out twice at once, but again after done.
        q.add(first.clone());
        assert_eq!(q.len(), 1);
        let second = q.next().await;
        assert_eq!(second, Key::new("a", "y"));
        q.done(&first);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next().await, first);
        q.done(&first);
        q.done(&second);
        assert!(q.is_empty());
    }
}
