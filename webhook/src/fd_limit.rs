//! The open-file limit: raised to its hard maximum at start (as Go's runtime does for every Go
//! server), and the connection cap kept below it so that accepting never fails with EMFILE while
//! the cap can still close an idle connection for a newcomer.

use rustix::process::{Resource, getrlimit, setrlimit};

/// Descriptors kept for everything but client connections: listeners, watches, the Kubernetes
/// client's connections, certificate files.
pub const RESERVED_FDS: u64 = 64;

/// Raises the soft open-file limit to the hard one; returns the soft limit in force (None when
/// unlimited).
pub fn raise_nofile() -> Option<u64> {
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = raised,
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
    limit.current
}

/// Sets both open-file limits to `n`, as a container runtime would (benchmarks, tests).
pub fn set_nofile(n: u64) -> std::io::Result<()> {
    let limit = rustix::process::Rlimit {
        current: Some(n),
        maximum: Some(n),
    };
    setrlimit(Resource::Nofile, limit).map_err(std::io::Error::from)
}

/// `max` connections, or fewer when the open-file limit `soft` would not hold them.
pub fn connection_cap(max: usize, soft: Option<u64>) -> usize {
    match soft {
        Some(soft) => {
            let room = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
            max.min(room).max(1)
        }
        None => max.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_process_own_files() {
        assert_eq!(connection_cap(1024, Some(1_048_576)), 1024);
        assert_eq!(connection_cap(1024, Some(256)), 192);
        assert_eq!(connection_cap(1024, Some(10)), 1);
        assert_eq!(connection_cap(1024, None), 1024);
        assert!(raise_nofile().is_none_or(|n| n > 0));
    }
}
