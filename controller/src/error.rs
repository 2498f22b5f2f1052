//! The controller's error type.

/// Why a reconcile or the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot encode or decode {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("saved manifest {key}: {source}")]
    Saved {
        key: String,
        #[source]
        source: crate::saved::SavedError,
    },
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("probe server on {addr}: {source}")]
    Probe {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable label for the reconcile-error metric.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Json { .. } => "json",
            Self::Invalid(_) => "invalid",
            Self::Saved { .. } => "saved",
            Self::Lease(_) => "lease",
            Self::Probe { .. } => "probe",
        }
    }

    /// The HTTP status of an API error, if it was one.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Self::Kube {
                source: kube::Error::Api(s),
                ..
            } => Some(s.code),
            _ => None,
        }
    }

    /// Errors worth retrying with backoff within the step's timeout (conflicts, throttling,
    /// server errors, transport) rather than counting against `maxRetries`.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Kube {
                source: kube::Error::Api(s),
                ..
            } => matches!(s.code, 404 | 409 | 429) || s.code >= 500,
            Self::Kube { .. } => true,
            _ => false,
        }
    }
}

/// Attaches what was being done to a kube error.
pub trait KubeContext<T> {
    fn during(self, action: impl FnOnce() -> String) -> Result<T>;
}

impl<T> KubeContext<T> for std::result::Result<T, kube::Error> {
    fn during(self, action: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Kube {
            action: action(),
            source,
        })
    }
}

/// The HTTP status of a kube API error.
pub fn code_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
