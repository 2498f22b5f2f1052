//! The one in-memory object store: objects by (group, resource) -> (namespace, name), a global
//! resourceVersion, and a bounded per-resource watch history with broadcast fan-out.
//!
//! Like kube-apiserver's watch cache, each resource keeps a window of recent changes: at most
//! `max_events`, and none older than `max_age` beyond the newest `MIN_EVENTS`. A watch (or an
//! exact list) from a resourceVersion before the window is 410 Expired. Objects of a resource
//! with a TTL (Events, kube's `--event-ttl`) are deleted that long after their last write.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::machinery::ApiError;

/// (group, plural)
pub type BucketKey = (String, String);
/// (namespace or "", name)
pub type ObjKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as recorded in the history and fanned out to watchers.
#[derive(Debug)]
pub struct Event {
    pub kind: EventType,
    pub rv: u64,
    pub object: Arc<Value>,
    /// The object before the change (for selector transitions).
    pub old: Option<Arc<Value>>,
    /// Serialized watch lines by (type, apiVersion), so fan-out serializes once per event.
    pub rendered: Mutex<Vec<(String, bytes::Bytes)>>,
    /// When the change was made (for the history's age bound).
    pub at: Instant,
}

impl Event {
    fn new(kind: EventType, rv: u64, object: Arc<Value>, old: Option<Arc<Value>>) -> Self {
        Event {
            kind,
            rv,
            object,
            old,
            rendered: Mutex::default(),
            at: Instant::now(),
        }
    }
}

struct Bucket {
    objects: BTreeMap<ObjKey, Arc<Value>>,
    history: VecDeque<Arc<Event>>,
    /// Every event with rv > floor is still in `history`.
    floor: u64,
    tx: broadcast::Sender<Arc<Event>>,
    /// Objects are deleted this long after their last write (None: kept until deleted).
    ttl: Option<Duration>,
    expires: HashMap<ObjKey, Instant>,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            floor: 0,
            tx: broadcast::channel(BROADCAST_CAPACITY).0,
            ttl: None,
            expires: HashMap::new(),
        }
    }

    /// Drops history past the window; returns how many events were dropped.
    fn trim(&mut self, limits: &HistoryLimits, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(front) = self.history.front() {
            let over_count = self.history.len() > limits.max_events;
            let over_age = self.history.len() > limits.min_events()
                && now.saturating_duration_since(front.at) > limits.max_age;
            if !(over_count || over_age) {
                break;
            }
            self.floor = front.rv;
            self.history.pop_front();
            dropped += 1;
        }
        dropped
    }
}

const BROADCAST_CAPACITY: usize = 8192;

/// Events always kept per resource, however old (kube's watch cache keeps at least 100).
const MIN_EVENTS: usize = 100;

/// The watch history window of each resource.
#[derive(Debug, Clone, Copy)]
pub struct HistoryLimits {
    pub max_events: usize,
    pub max_age: Duration,
}

impl HistoryLimits {
    fn min_events(&self) -> usize {
        MIN_EVENTS.min(self.max_events)
    }
}

struct Inner {
    rv: u64,
    buckets: HashMap<BucketKey, Bucket>,
    /// Owner uid -> the objects whose ownerReferences name it (kube's GC keeps such a graph).
    dependents: HashMap<String, BTreeSet<(BucketKey, ObjKey)>>,
}

impl Inner {
    /// Moves `key`'s entries in the owner index from `old`'s references to `new`'s.
    fn index_owners(&mut self, key: &BucketKey, okey: &ObjKey, old: Option<&Value>, new: Option<&Value>) {
        let (before, after) = (owner_uids(old), owner_uids(new));
        if before == after {
            return;
        }
        for uid in before.difference(&after) {
            if let Some(set) = self.dependents.get_mut(*uid) {
                set.remove(&(key.clone(), okey.clone()));
                if set.is_empty() {
                    self.dependents.remove(*uid);
                }
            }
        }
        for uid in after.difference(&before) {
            self.dependents
                .entry((*uid).to_owned())
                .or_default()
                .insert((key.clone(), okey.clone()));
        }
    }
}

/// The uids an object's ownerReferences name.
fn owner_uids(obj: Option<&Value>) -> BTreeSet<&str> {
    obj.and_then(|o| o.get("metadata")?.get("ownerReferences")?.as_array())
        .map(|refs| refs.iter().filter_map(|r| r.get("uid")?.as_str()).collect())
        .unwrap_or_default()
}

/// What a write closure decides.
pub enum WriteAction {
    /// Store this object (its metadata.resourceVersion is set by the store).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Remove the object; watchers see this final state (e.g. the last finalizer removed).
    DeleteAs(Value),
}

/// The store. Cheap to share behind an Arc.
pub struct Store {
    inner: Mutex<Inner>,
    limits: HistoryLimits,
}

/// A started watch: the events to send first and the live receiver.
pub struct WatchStart {
    pub initial: Vec<Arc<Event>>,
    pub rx: broadcast::Receiver<Arc<Event>>,
}

impl Store {
    pub fn new(limits: HistoryLimits) -> Self {
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                buckets: HashMap::new(),
                dependents: HashMap::new(),
            }),
            limits: HistoryLimits {
                max_events: limits.max_events.max(1),
                max_age: limits.max_age,
            },
        }
    }

    /// Objects of `key` expire `ttl` after their last write (kube's `--event-ttl`).
    pub fn set_ttl(&self, key: &BucketKey, ttl: Duration) {
        let mut inner = self.lock();
        inner.buckets.entry(key.clone()).or_insert_with(Bucket::new).ttl = Some(ttl);
    }

    /// Events held in the watch history of `key` (for tests and metrics).
    pub fn history_len(&self, key: &BucketKey) -> usize {
        self.lock().buckets.get(key).map_or(0, |b| b.history.len())
    }

    /// Deletes expired objects (watchers see DELETED) and trims every history past its age.
    /// Returns how many objects expired.
    pub fn expire(&self, now: Instant) {
        let mut inner = self.lock();
        let mut due = vec![];
        for (key, b) in &mut inner.buckets {
            b.trim(&self.limits, now);
            for (okey, at) in &b.expires {
                if *at <= now {
                    due.push((key.clone(), okey.clone()));
                }
            }
        }
        for (key, (ns, name)) in due {
            let _ = self.write_locked(&mut inner, &key, &ns, &name, |cur, _| match cur {
                Some(_) => Ok(WriteAction::Delete),
                None => Err(ApiError::internal("already gone")),
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied write (writes are single
        // inserts), so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, key: &BucketKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.lock()
            .buckets
            .get(key)?
            .objects
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource (one namespace or all), in key order, starting after `after`.
    pub fn list(&self, key: &BucketKey, ns: Option<&str>, after: Option<&ObjKey>) -> (Vec<Arc<Value>>, u64) {
        use std::ops::Bound;
        let inner = self.lock();
        let rv = inner.rv;
        let Some(b) = inner.buckets.get(key) else {
            return (vec![], rv);
        };
        let lower = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => match ns {
                Some(n) => Bound::Included((n.to_string(), String::new())),
                None => Bound::Unbounded,
            },
        };
        let items = b
            .objects
            .range((lower, Bound::Unbounded))
            .take_while(|((kns, _), _)| ns.is_none_or(|n| n == kns))
            .map(|(_, v)| v.clone())
            .collect();
        (items, rv)
    }

    /// Runs `f` on the current object under the store lock and applies its decision,
    /// recording and broadcasting the event. Returns the stored (or deleted) object.
    pub fn write<F>(&self, key: &BucketKey, ns: &str, name: &str, f: F) -> Result<Arc<Value>, ApiError>
    where
        F: FnOnce(Option<&Arc<Value>>, u64) -> Result<WriteAction, ApiError>,
    {
        let mut inner = self.lock();
        self.write_locked(&mut inner, key, ns, name, f)
    }

    fn write_locked<F>(
        &self,
        inner: &mut Inner,
        key: &BucketKey,
        ns: &str,
        name: &str,
        f: F,
    ) -> Result<Arc<Value>, ApiError>
    where
        F: FnOnce(Option<&Arc<Value>>, u64) -> Result<WriteAction, ApiError>,
    {
        let next_rv = inner.rv + 1;
        let okey = (ns.to_string(), name.to_string());
        let bucket = inner.buckets.entry(key.clone()).or_insert_with(Bucket::new);
        let old = bucket.objects.get(&okey).cloned();
        let action = f(old.as_ref(), next_rv)?;
        let (kind, object, stored) = match action {
            WriteAction::Put(mut obj) => {
                obj["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                let obj = Arc::new(obj);
                bucket.objects.insert(okey.clone(), obj.clone());
                if let Some(ttl) = bucket.ttl {
                    bucket.expires.insert(okey.clone(), Instant::now() + ttl);
                }
                let kind = if old.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                (kind, obj.clone(), Some(obj))
            }
            WriteAction::Delete | WriteAction::DeleteAs(_) => {
                let Some(prev) = bucket.objects.remove(&okey) else {
                    return Err(ApiError::internal("delete of a missing object"));
                };
                bucket.expires.remove(&okey);
                let mut obj = match action {
                    WriteAction::DeleteAs(last) => last,
                    _ => (*prev).clone(),
                };
                obj["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                (EventType::Deleted, Arc::new(obj), None)
            }
        };
        inner.index_owners(key, &okey, old.as_deref(), stored.as_deref());
        let bucket = inner.buckets.entry(key.clone()).or_insert_with(Bucket::new);
        let ev = Arc::new(Event::new(kind, next_rv, object.clone(), old));
        bucket.history.push_back(ev.clone());
        bucket.trim(&self.limits, ev.at);
        // No receivers is fine.
        let _ = bucket.tx.send(ev);
        inner.rv = next_rv;
        Ok(object)
    }

    /// The objects of a resource (one namespace or all) as they were at `rv`: the current ones
    /// with every later change undone. 410 Expired if `rv` is before the history window.
    pub fn list_at(&self, key: &BucketKey, ns: Option<&str>, rv: u64) -> Result<Vec<Arc<Value>>, ApiError> {
        let inner = self.lock();
        let Some(b) = inner.buckets.get(key) else {
            return Ok(vec![]);
        };
        if rv < b.floor {
            return Err(too_old(rv, b.floor));
        }
        let mut objects = b.objects.clone();
        for ev in b.history.iter().rev().take_while(|e| e.rv > rv) {
            let okey = (
                ev.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                ev.object["metadata"]["name"].as_str().unwrap_or("").to_string(),
            );
            match &ev.old {
                Some(old) => objects.insert(okey, old.clone()),
                None => objects.remove(&okey),
            };
        }
        Ok(objects
            .into_iter()
            .filter(|((kns, _), _)| ns.is_none_or(|n| n == kns))
            .map(|(_, v)| v)
            .collect())
    }

    /// Starts a watch. `from` None: synthetic ADDED for every current object, then live.
    /// `from` Some(rv): every recorded event after rv, then live; 410 if rv is too old.
    pub fn watch(
        &self,
        key: &BucketKey,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let mut inner = self.lock();
        let rv = inner.rv;
        let bucket = inner.buckets.entry(key.clone()).or_insert_with(Bucket::new);
        let rx = bucket.tx.subscribe();
        let in_ns = |o: &Value| ns.is_none_or(|n| o["metadata"]["namespace"].as_str().unwrap_or("") == n);
        let initial = match from {
            None => bucket
                .objects
                .values()
                .filter(|o| in_ns(o))
                .map(|o| Arc::new(Event::new(EventType::Added, rv, o.clone(), None)))
                .collect(),
            Some(from) => {
                if from < bucket.floor {
                    return Err(too_old(from, bucket.floor));
                }
                bucket
                    .history
                    .iter()
                    .filter(|e| e.rv > from && in_ns(&e.object))
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchStart { initial, rx })
    }

    /// True if the watcher's receiver has nothing pending (checked under the write lock so a
    /// bookmark with the current rv cannot overtake an event).
    pub fn bookmark_rv(&self, rx: &broadcast::Receiver<Arc<Event>>) -> Option<u64> {
        let inner = self.lock();
        rx.is_empty().then_some(inner.rv)
    }

    /// The objects whose ownerReferences name `owner_uid`.
    pub fn dependents(&self, owner_uid: &str) -> Vec<(BucketKey, ObjKey)> {
        self.lock()
            .dependents
            .get(owner_uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// All objects of all buckets (snapshot).
    pub fn dump(&self) -> (u64, Vec<(BucketKey, Arc<Value>)>) {
        let inner = self.lock();
        let mut out = vec![];
        for (k, b) in &inner.buckets {
            for o in b.objects.values() {
                out.push((k.clone(), o.clone()));
            }
        }
        (inner.rv, out)
    }

    /// Loads objects as they were (keeps their resourceVersions), and the global rv.
    pub fn load(&self, rv: u64, objects: Vec<(BucketKey, Value)>) {
        let mut inner = self.lock();
        inner.rv = inner.rv.max(rv);
        for (k, o) in objects {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("").to_string();
            let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
            let okey = (ns, name);
            let new = Arc::new(o);
            let bucket = inner.buckets.entry(k.clone()).or_insert_with(Bucket::new);
            if let Some(ttl) = bucket.ttl {
                bucket.expires.insert(okey.clone(), Instant::now() + ttl);
            }
            let old = bucket.objects.insert(okey.clone(), new.clone());
            inner.index_owners(&k, &okey, old.as_deref(), Some(&new));
        }
        // Watches from before the restart cannot be resumed.
        let rv = inner.rv;
        for b in inner.buckets.values_mut() {
            b.floor = rv;
        }
    }
}

/// kube's 410 for a resourceVersion before the window; `oldest` is the oldest one it can serve.
fn too_old(rv: u64, oldest: u64) -> ApiError {
    ApiError::gone(&format!("too old resource version: {rv} ({oldest})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(store: &Store, name: &str, owners: &[&str]) {
        let refs: Vec<Value> = owners.iter().map(|u| json!({"uid": u})).collect();
        let obj = json!({"metadata": {"name": name, "namespace": "ns", "ownerReferences": refs}});
        store
            .write(&("".into(), "pods".into()), "ns", name, |_, _| {
                Ok(WriteAction::Put(obj))
            })
            .unwrap();
    }

    #[test]
    fn owner_index_follows_writes_and_deletes() {
        let store = Store::new(HistoryLimits {
            max_events: 10,
            max_age: Duration::from_secs(60),
        });
        let pods = ("".to_owned(), "pods".to_owned());
        let key = |n: &str| (pods.clone(), ("ns".to_owned(), n.to_owned()));
        put(&store, "a", &["u1"]);
        put(&store, "b", &["u1", "u2"]);
        assert_eq!(store.dependents("u1"), vec![key("a"), key("b")]);
        assert_eq!(store.dependents("u2"), vec![key("b")]);
        put(&store, "b", &["u2"]);
        assert_eq!(store.dependents("u1"), vec![key("a")]);
        store
            .write(&pods, "ns", "a", |_, _| Ok(WriteAction::Delete))
            .unwrap();
        assert!(store.dependents("u1").is_empty());
        store.load(
            50,
            vec![(
                pods.clone(),
                json!({"metadata": {"name": "c", "namespace": "ns",
            "ownerReferences": [{"uid": "u3"}]}}),
            )],
        );
        assert_eq!(store.dependents("u3"), vec![key("c")]);
        assert_eq!(store.dependents("u2"), vec![key("b")]);
    }
}
