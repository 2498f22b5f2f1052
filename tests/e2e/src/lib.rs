//! volops end-to-end harness: the sandbox API server with its simulated cluster, the webhook
//! and the controller in one process, talking over real loopback HTTPS/HTTP.
//!
//! ```no_run
//! # async fn demo() -> volops_e2e::Result<()> {
//! let harness = volops_e2e::Harness::start_default().await?;
//! harness.apply_file(std::path::Path::new("examples/namespace.yaml")).await?;
//! harness.shutdown().await
//! # }
//! ```

pub mod apply;
pub mod chaos;
pub mod chart;
pub mod chart_config;
pub mod demo;
pub mod deployed;
pub mod error;
pub mod harness;
pub mod identity;
pub mod track;
pub mod wait;
pub mod webhook;

pub use error::{Error, Result};
pub use harness::{Harness, HarnessOptions, install_crds, petset_resource};
pub use webhook::Webhook;

/// The repository root (examples/, charts/, tests/chart/ live there).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .components()
        .collect()
}
