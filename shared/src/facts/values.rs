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
#[derive(Clone, PartialEq, Eq)]
pub struct QuantityText {
    text: String,
    /// `None` when the text is not a valid quantity.
    nanos: Option<i128>,
}

impl QuantityText {
    pub fn new(text: String) -> Self {
        let nanos = Quantity::nanos_of(&text).ok();
        Self { text, nanos }
    }
    /// The exact value in nano-units, or `None` when the text is not a quantity.
    pub fn nanos(&self) -> Option<i128> {
        self.nanos
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Deref for QuantityText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
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
        self.text.fmt(f)
    }
}

impl fmt::Display for QuantityText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
