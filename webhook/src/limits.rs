//! The HTTPS server's resource limits and their defaults (webhook/README.md, "Limits"): how long
//! a client may take, how many connections and how many bytes of review bodies it may hold.

use std::time::Duration;

/// Limits of the admission listener. The defaults keep the webhook within the chart's 256Mi
/// under the floods measured in docs/PERFORMANCE.md ("Webhook under floods").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A new connection must finish its TLS handshake within this, and a request's head must
    /// arrive within this from its first byte (slowloris).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed (HTTP/1.1 keep-alive;
    /// HTTP/2 with a GOAWAY first). Longer than the 90 s after which kube-apiserver's client
    /// drops its own idle connections, so that it is the one to close them.
    pub idle_timeout: Duration,
    /// Open connections at most (TLS handshakes included). A new connection beyond it closes an
    /// idle connection of the peer address holding the most, or is refused when none is idle.
    pub max_connections: usize,
    /// Largest admission review body (413 above).
    pub max_body_bytes: usize,
    /// Bytes of review bodies held in memory at once over all requests; a request counts at least
    /// [`MIN_BODY_CHARGE`]. A request beyond it is answered 503 with `Retry-After` at once.
    pub body_memory_bytes: usize,
}

/// Every request in flight counts at least this against [`Limits::body_memory_bytes`], so the
/// budget also caps how many requests are in flight (2,048 at the default 32 MiB).
pub const MIN_BODY_CHARGE: usize = 16 * 1024;

/// Bodies larger than this are "large": together they may take only three quarters of
/// [`Limits::body_memory_bytes`], so that the reviews kube-apiserver sends for ops requests and
/// databases (a few KiB) still find room while large bodies fill the rest.
pub const LARGE_BODY: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: 1024,
            max_body_bytes: crate::routes::MAX_BODY,
            body_memory_bytes: 32 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The ceiling of the body budget for a request whose body is `bytes` long so far.
    pub fn body_ceiling(&self, bytes: usize) -> usize {
        if bytes > LARGE_BODY {
            self.body_memory_bytes - self.body_memory_bytes / 4
        } else {
            self.body_memory_bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bodies_leave_a_quarter_of_the_budget_to_small_ones() {
        let l = Limits::default();
        assert_eq!(l.body_ceiling(4096), 32 << 20);
        assert_eq!(l.body_ceiling(LARGE_BODY), 32 << 20);
        assert_eq!(l.body_ceiling(LARGE_BODY + 1), 24 << 20);
    }
}
