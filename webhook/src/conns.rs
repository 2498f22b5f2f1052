//! Open connections: what each one is doing, how many there are and from whom, and which one to
//! close when a new one arrives at the cap (webhook/README.md, "Limits").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// What one connection is doing, written by its I/O (bytes read) and its requests.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicU32,
    /// Milliseconds since `epoch` when the last request ended (or the connection opened).
    last_active_ms: AtomicU64,
    /// 1 + milliseconds since `epoch` when a request head began to arrive; 0: none pending.
    head_started_ms: AtomicU64,
    changed: Notify,
}

/// What a connection's watcher waits for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A request is in flight (its body read is bounded by the request timeout).
    Busy,
    /// A request head began: it must be complete by then.
    HeadBy(Instant),
    /// Nothing in flight: closed as idle at that time.
    IdleBy(Instant),
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        let a = Self {
            epoch,
            in_flight: AtomicU32::new(0),
            last_active_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(0),
            changed: Notify::new(),
        };
        a.last_active_ms.store(a.now_ms(), Ordering::Relaxed);
        a
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    /// A request's head has been read: it is in flight until the guard drops.
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started_ms.store(0, Ordering::Release);
        RequestGuard {
            activity: self.clone(),
        }
    }

    /// Bytes arrived. With nothing in flight they are the start of a request head.
    pub fn note_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 && self.head_started_ms.load(Ordering::Acquire) == 0 {
            self.head_started_ms.store(self.now_ms() + 1, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// The head clock starts now without bytes: an HTTP/1.1 connection must send its first
    /// request within the header-read timeout of its handshake.
    pub fn expect_head(&self) {
        self.head_started_ms.store(self.now_ms() + 1, Ordering::Release);
        self.changed.notify_one();
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    fn last_active(&self) -> u64 {
        self.last_active_ms.load(Ordering::Acquire)
    }

    /// The next deadline under `header_timeout` and `idle_timeout`.
    pub fn next_wait(&self, header_timeout: Duration, idle_timeout: Duration) -> Wait {
        if !self.is_idle() {
            return Wait::Busy;
        }
        match self.head_started_ms.load(Ordering::Acquire) {
            0 => Wait::IdleBy(self.at(self.last_active()) + idle_timeout),
            started => Wait::HeadBy(self.at(started - 1) + header_timeout),
        }
    }

    /// Resolves after the next change of state (a head began, a request ended).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Marks a request in flight; its drop ends it.
#[derive(Debug)]
pub struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let a = &self.activity;
        a.last_active_ms.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        a.changed.notify_one();
    }
}

#[derive(Debug)]
struct Entry {
    peer: IpAddr,
    activity: Arc<Activity>,
    close: CancellationToken,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Inner {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.conns.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&entry.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }
}

/// The open connections of one listener, at most `max`.
pub struct Registry {
    max: usize,
    epoch: Instant,
    inner: Mutex<Inner>,
    emptied: Notify,
    metrics: Arc<Metrics>,
}

/// A connection let in: its activity, the token that closes it at once (eviction, end of the
/// drain) and its place in the registry, freed on drop.
pub struct Admitted {
    pub activity: Arc<Activity>,
    pub close: CancellationToken,
    _slot: Slot,
}

struct Slot {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if inner.remove(self.id).is_some() {
            self.registry.metrics.connections.set(gauge(inner.conns.len()));
        }
        if inner.conns.is_empty() {
            self.registry.emptied.notify_waiters();
        }
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A connection the cap may close: `peer_conns` open connections from its address, `idle`
/// when no request is in flight, `last_active` its last activity (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: u64,
    pub peer_conns: usize,
    pub idle: bool,
    pub last_active: u64,
}

/// The connection to close for a newcomer: an idle one of the address holding the most
/// connections (a flood from one address pays for itself; kube-apiserver's few connections
/// from its own address are the last to go), the longest idle among those. None when every
/// connection has a request in flight.
pub fn pick_victim(candidates: impl IntoIterator<Item = Candidate>) -> Option<u64> {
    candidates
        .into_iter()
        .filter(|c| c.idle)
        .max_by(|a, b| {
            a.peer_conns
                .cmp(&b.peer_conns)
                .then(b.last_active.cmp(&a.last_active))
                .then(b.id.cmp(&a.id))
        })
        .map(|c| c.id)
}

impl Registry {
    pub fn new(max: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            emptied: Notify::new(),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Lets a connection from `peer` in, closing another one at the cap; None when every open
    /// connection has a request in flight (the newcomer is refused).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Admitted> {
        let mut inner = self.lock();
        if inner.conns.len() >= self.max {
            let candidates: Vec<Candidate> = inner
                .conns
                .iter()
                .map(|(id, e)| Candidate {
                    id: *id,
                    peer_conns: inner.per_peer.get(&e.peer).copied().unwrap_or(0),
                    idle: e.activity.is_idle(),
                    last_active: e.activity.last_active(),
                })
                .collect();
            match pick_victim(candidates).and_then(|id| inner.remove(id)) {
                Some(victim) => {
                    victim.close.cancel();
                    self.metrics.count_closed("evicted");
                    tracing::debug!(peer = %victim.peer, "connection cap reached: closed an idle connection");
                }
                None => {
                    self.metrics.count_closed("refused");
                    tracing::debug!(%peer, "connection cap reached and every connection busy: refused");
                    return None;
                }
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let activity = Arc::new(Activity::new(self.epoch));
        let close = CancellationToken::new();
        inner.conns.insert(
            id,
            Entry {
                peer,
                activity: activity.clone(),
                close: close.clone(),
            },
        );
        *inner.per_peer.entry(peer).or_default() += 1;
        self.metrics.connections.set(gauge(inner.conns.len()));
        Some(Admitted {
            activity,
            close,
            _slot: Slot {
                registry: self.clone(),
                id,
            },
        })
    }

    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every connection at once (the end of the drain).
    pub fn close_all(&self) {
        for e in self.lock().conns.values() {
            e.close.cancel();
        }
    }

    /// Resolves once no connection is open.
    pub async fn wait_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.is_empty() {
                return;
            }
            emptied.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: u64, peer_conns: usize, idle: bool, last_active: u64) -> Candidate {
        Candidate {
            id,
            peer_conns,
            idle,
            last_active,
        }
    }

    #[test]
    fn the_victim_is_an_idle_connection_of_the_biggest_holder_longest_idle_first() {
        // Address A holds 3 (one busy), B holds 1 (idle for longest of all).
        let all = [
            c(1, 3, true, 50),
            c(2, 3, false, 10),
            c(3, 3, true, 20),
            c(4, 1, true, 5),
        ];
        assert_eq!(pick_victim(all), Some(3));
        assert_eq!(pick_victim([c(1, 1, false, 0), c(2, 2, false, 0)]), None);
        assert_eq!(pick_victim([c(7, 1, true, 9), c(8, 1, true, 3)]), Some(8));
    }

    #[tokio::test]
    async fn at_the_cap_the_flooding_address_loses_a_connection_and_busy_ones_are_kept() {
        let r = Registry::new(3, Arc::new(Metrics::new()));
        let api: IpAddr = [10, 0, 0, 1].into();
        let flood: IpAddr = [10, 0, 0, 66].into();
        let apiserver = r.admit(api).unwrap();
        let a = r.admit(flood).unwrap();
        let b = r.admit(flood).unwrap();
        let c = r.admit(flood).unwrap();
        assert_eq!(r.len(), 3);
        assert!(a.close.is_cancelled() && !b.close.is_cancelled() && !apiserver.close.is_cancelled());
        // Every connection busy: the newcomer is refused.
        let _busy = [&apiserver, &b, &c].map(|x| x.activity.begin_request());
        assert!(r.admit(flood).is_none());
        drop((a, b, c));
        assert_eq!(r.len(), 1);
        drop(apiserver);
        tokio::time::timeout(Duration::from_secs(1), r.wait_empty())
            .await
            .unwrap();
    }

    #[test]
    fn a_head_started_with_nothing_in_flight_has_a_deadline_and_a_request_clears_it() {
        let a = Arc::new(Activity::new(Instant::now()));
        let (h, i) = (Duration::from_secs(10), Duration::from_secs(120));
        assert!(matches!(a.next_wait(h, i), Wait::IdleBy(_)));
        a.note_read();
        let Wait::HeadBy(by) = a.next_wait(h, i) else {
            panic!()
        };
        assert!(by <= Instant::now() + h);
        let guard = a.begin_request();
        assert_eq!(a.next_wait(h, i), Wait::Busy);
        a.note_read(); // body bytes of the request in flight
        drop(guard);
        assert!(matches!(a.next_wait(h, i), Wait::IdleBy(_)));
    }
}
