//! placeholder
pub struct Dispatcher;
