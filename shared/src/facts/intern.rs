//! One shared allocation per distinct text for values that repeat across a cache's many views
//! (a PVC's StorageClass and phase): 100,000 PVCs name a handful of classes
//! (docs/ARCHITECTURE.md, "What each cache holds").

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

/// A text shared by every view that holds the same one.
pub type Interned = Arc<str>;

/// Tenants write these values, so the table is bounded: past this many distinct texts a new
/// one gets an allocation of its own instead of a place in the table for good.
const MAX_INTERNED: usize = 1024;

static TABLE: LazyLock<Table> = LazyLock::new(|| Table::new(MAX_INTERNED));

/// The shared copy of `text`.
pub fn intern(text: &str) -> Interned {
    TABLE.intern(text)
}

/// The texts shared so far, up to a bound.
struct Table {
    texts: Mutex<HashSet<Interned>>,
    bound: usize,
}

impl Table {
    fn new(bound: usize) -> Self {
        Self {
            texts: Mutex::new(HashSet::new()),
            bound,
        }
    }

    fn intern(&self, text: &str) -> Interned {
        let mut texts = match self.texts.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(shared) = texts.get(text) {
            return shared.clone();
        }
        let shared: Interned = Arc::from(text);
        if texts.len() < self.bound {
            texts.insert(shared.clone());
        }
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_is_one_allocation_and_the_table_stops_growing_at_its_bound() {
        let table = Table::new(16);
        let a = table.intern("standard");
        let b = table.intern(&String::from("standard"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "standard");
        for i in 0..26 {
            let text = format!("class-{i}");
            assert_eq!(&*table.intern(&text), text);
        }
        assert_eq!(table.texts.lock().map(|t| t.len()).unwrap_or_default(), 16);
        // Past the bound a text is still returned, only not shared; the shared ones still are.
        let c = table.intern("past-the-bound");
        let d = table.intern("past-the-bound");
        assert_eq!(c, d);
        assert!(!Arc::ptr_eq(&c, &d));
        assert!(Arc::ptr_eq(&a, &table.intern("standard")));
    }
}
