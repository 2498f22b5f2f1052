//! The harness's error type: every failure names what was being done.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sandbox: {0}")]
    Sandbox(#[from] volops_sandbox::SandboxError),
    #[error("certificates: {0}")]
    Certs(#[from] volops_certs::CertError),
    #[error("webhook: {0}")]
    Webhook(#[from] volops_webhook::RunError),
    #[error("CRDs: {0}")]
    Crd(#[from] volops_shared::crd::CrdError),
    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("YAML in {context}: {source}")]
    Yaml {
        context: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("timed out after {after:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        after: Duration,
        last: String,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to kube errors.
pub(crate) fn kube_ctx(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let context = context.into();
    move |source| Error::Kube { context, source }
}

pub(crate) fn io_ctx(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
