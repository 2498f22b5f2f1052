//! Errors of the simulated controllers.

/// What can go wrong in one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What we were doing.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// An object did not have the expected shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which object.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Attaches an action description to a kube error.
pub trait Context<T> {
    /// Wraps the error with `action`.
    fn ctx(self, action: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for Result<T, kube::Error> {
    fn ctx(self, action: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Kube {
            action: action(),
            source,
        })
    }
}

/// True when the error is an API status with this HTTP code.
pub fn is_code(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

/// Ignores 404 (object already gone) and 409 AlreadyExists on create.
pub fn ignore_codes<T>(res: Result<T, kube::Error>, codes: &[u16]) -> Result<Option<T>, kube::Error> {
    match res {
        Ok(v) => Ok(Some(v)),
        Err(e) if codes.iter().any(|c| is_code(&e, *c)) => Ok(None),
        Err(e) => Err(e),
    }
}
