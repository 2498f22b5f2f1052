//! The demo scenario (`volops-demo`, and `tests/demo_once.rs` without the binary): apply
//! examples/, show denials, run an Online Redis and an Offline ZooKeeper expansion with live
//! progress, then a storage autoscaler growing a Redis whose volume fills; summarise the PVCs.

mod autoscale;
mod denials;
mod follow;
mod output;
mod scenario;
mod summary;

pub use autoscale::{Autoscaled, run_autoscale};
pub use denials::{Denial, try_shrinks};
pub use follow::Expansion;
pub use output::Output;
pub use scenario::{Report, run_scenario};
pub use summary::{PvcRow, table};
