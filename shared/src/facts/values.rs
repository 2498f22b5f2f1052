//! Values the views share: a reference-counted list, and a quantity kept as written.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::quantity::Quantity;

/// A list shared between [`Facts`] values: cloning is a reference count, changing it (tests,
/// builders) copies it first if anybody else holds it. The webhook keeps each namespace's PVC
/// views in one and hands the same list to every review.
#[derive(PartialEq, Eq)]
pub struct Shared<T>(Arc<Vec<T>>);

impl<T> Shared<T> {
    pub fn new(items: Vec<T>) -> Self {
        Self(Arc::new(items))
    }
    /// True when both hold the very same list (not merely equal ones).
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self(Arc::new(Vec::new()))
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T> Deref for Shared<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        Arc::make_mut(&mut self.0)
    }
}

impl<T> From<Vec<T>> for Shared<T> {
    fn from(items: Vec<T>) -> Self {
        Self::new(items)
    }
}

impl<T> FromIterator<T> for Shared<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

/// A quantity as written in an object, parsed once when the view is built (rules that sum or
/// compare many of them read [`QuantityText::nanos`]). Reads as the text it was written as.
///
/// Compact, as one sits in every cached PVC view (docs/ARCHITECTURE.md, "What each cache
/// holds"): the API server writes a PVC's quantities in canonical form, so a whole number of
/// bytes whose canonical text is the text written keeps only the number (16 bytes, no
/// allocation); anything else keeps its text.
#[derive(Clone, PartialEq, Eq)]
pub struct QuantityText(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// Whole bytes, written in canonical form.
    Bytes(u64),
    /// Any other text, with its value (`None` when it is not a quantity).
    Written(Box<(String, Option<i128>)>),
}

const NANO: i128 = 1_000_000_000;

impl QuantityText {
    pub fn new(text: String) -> Self {
        let nanos = Quantity::nanos_of(&text).ok();
        let whole_bytes = nanos
            .filter(|n| n % NANO == 0)
            .and_then(|n| u64::try_from(n / NANO).ok());
        match whole_bytes {
            Some(b) if Quantity::from_bytes(i128::from(b)).as_str() == text => Self(Repr::Bytes(b)),
            _ => Self(Repr::Written(Box::new((text, nanos)))),
        }
    }
    /// The exact value in nano-units, or `None` when the text is not a quantity.
    pub fn nanos(&self) -> Option<i128> {
        match &self.0 {
            Repr::Bytes(b) => Some(i128::from(*b) * NANO),
            Repr::Written(w) => w.1,
        }
    }
    /// The quantity, or `None` when the text is not one.
    pub fn quantity(&self) -> Option<Quantity> {
        match &self.0 {
            Repr::Bytes(b) => Some(Quantity::from_bytes(i128::from(*b))),
            Repr::Written(w) => Quantity::parse(&w.0).ok(),
        }
    }
}

impl From<&str> for QuantityText {
    fn from(text: &str) -> Self {
        Self::new(text.to_owned())
    }
}

impl From<String> for QuantityText {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl fmt::Debug for QuantityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_string().fmt(f)
    }
}

impl fmt::Display for QuantityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Bytes(b) => f.write_str(Quantity::from_bytes(i128::from(*b)).as_str()),
            Repr::Written(w) => f.write_str(&w.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_reads_as_written_and_canonical_whole_bytes_keep_no_text() {
        for text in [
            "1Gi", "1536Mi", "2G", "7", "0", "1.5Gi", "1024Mi", "100m", "2e3", "lots", "",
        ] {
            let q = QuantityText::from(text);
            assert_eq!(q.to_string(), text, "{text} reads as written");
            assert_eq!(q.nanos(), Quantity::nanos_of(text).ok(), "{text}");
            assert_eq!(
                q.quantity().map(|q| q.nanos()),
                Quantity::nanos_of(text).ok(),
                "{text}"
            );
        }
        assert!(matches!(QuantityText::from("1Gi").0, Repr::Bytes(1_073_741_824)));
        assert!(
            matches!(QuantityText::from("1024Mi").0, Repr::Written(_)),
            "not canonical"
        );
        assert!(
            matches!(QuantityText::from("100m").0, Repr::Written(_)),
            "not whole bytes"
        );
        assert_eq!(std::mem::size_of::<Option<QuantityText>>(), 16);
    }
}
