//! volops-shared: the API types, quantity math, per-database descriptors, the storage
//! autoscaler's decision, and every rule and default of volops as pure functions, used by both
//! the webhook and the controller.

pub mod api;
pub mod autoscale;
pub mod conditions;
pub mod crd;
pub mod defaults;
pub mod descriptor;
pub mod duration;
pub mod facts;
pub mod index;
pub mod quantity;
pub mod rules;
pub mod selector;

pub use descriptor::{DatabaseKind, Topology, TopologyError, Workload, WorkloadKind};
pub use facts::Facts;
pub use quantity::Quantity;
pub use rules::{Verdict, validate_create};
