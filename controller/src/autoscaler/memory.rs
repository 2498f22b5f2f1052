//! What the loop remembers of each autoscaler between intervals (this process only; a new
//! leader starts afresh from the caches, which show every request by then).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

/// An autoscaler: (kind, namespace, name).
pub type Key = (&'static str, String, String);

#[derive(Clone, Debug, Default)]
pub struct Remembered {
    /// The request this process created that the request cache may not show yet: active
    /// until it does, so a second one is never created in between.
    pub pending: Option<String>,
    /// When the fullest volume was first seen at or above the threshold (for the metric).
    pub crossed_since: Option<Timestamp>,
    /// The reason of the last decision (an Event is published when it changes).
    pub last_reason: Option<String>,
}

#[derive(Default)]
pub struct Memory {
    by_key: HashMap<Key, Remembered>,
}

impl Memory {
    pub fn get(&mut self, key: &Key) -> &mut Remembered {
        self.by_key.entry(key.clone()).or_default()
    }

    /// Forgets the autoscalers not in `seen` (deleted); returns their keys.
    pub fn retain(&mut self, seen: &HashSet<Key>) -> Vec<Key> {
        let gone: Vec<Key> = self
            .by_key
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for k in &gone {
            self.by_key.remove(k);
        }
        gone
    }
}
