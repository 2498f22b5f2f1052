//! volops admission webhook: validates and defaults KubeDB volume-expansion ops requests and
//! storage autoscalers, judges storage that grows outside them (a database's `spec.storage`, a
//! PVC's request) and refuses VolumeExpansionPolicies it could not enforce, deciding from watch
//! caches with the shared rules.
//!
//! Start it in-process with [`run::start`] (kube client, reflectors) or
//! [`run::start_with_caches`] (caches filled by the caller); serve just the admission API
//! with [`routes::router`].

pub mod admit;
pub mod autoscaler;
pub mod body;
pub mod caches;
pub mod conns;
pub mod fd_limit;
pub mod fields;
pub mod limits;
pub mod metrics;
pub mod probes;
pub mod reflectors;
pub mod reload;
pub mod review;
pub mod routes;
pub mod run;
pub mod server;
pub mod server_args;
pub mod tls;
pub mod tracked;
pub mod views;

pub use caches::{Caches, Writers};
pub use run::{Config, RunError, Running, start, start_with_caches};
