//! placeholder
pub mod builtin;
pub mod webhook;
