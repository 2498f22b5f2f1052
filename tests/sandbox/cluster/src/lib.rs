//! Simulated cluster controllers (placeholder until built; see issue 4).

/// What the simulated cluster does (filled in by the cluster work).
#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {}

/// Handle to the running simulated controllers.
#[derive(Debug)]
pub struct ClusterHandle {}

/// Starts every simulated controller against the API behind `client`.
pub async fn start(_client: kube::Client, _config: ClusterConfig) -> ClusterHandle {
    ClusterHandle {}
}
