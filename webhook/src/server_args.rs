//! The flags of the HTTPS listener (limits, client certificates) and of the metrics listener,
//! flattened into `volops-webhook`'s arguments (README.md, "Configuration").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use volops_shared::Quantity;

use crate::limits::Limits;
use crate::run::Config;

#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// Require a client certificate signed by this CA (PEM) on the HTTPS port; reloaded when it
    /// changes. For API servers configured to present one (see webhook/README.md).
    #[arg(long, env = "VOLOPS_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Plain-HTTP address for /metrics; the --probe-listen address serves it there as before.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    /// Time for a TLS handshake, and for a request head from its first byte.
    #[arg(long, default_value = "10s", value_parser = go_duration)]
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    #[arg(long, default_value = "120s", value_parser = go_duration)]
    pub idle_timeout: Duration,
    /// Time to read one request's body (503 after it).
    #[arg(long, default_value = "5s", value_parser = go_duration)]
    pub request_timeout: Duration,
    /// Open HTTPS connections at most (lowered to fit the open-file limit).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Largest admission review body (413 above), a quantity: 8Mi, 500Ki.
    #[arg(long, default_value = "8Mi", value_parser = byte_size)]
    pub max_body_bytes: usize,
    /// Bytes of admission review bodies in memory at once (503 + Retry-After beyond).
    #[arg(long, default_value = "32Mi", value_parser = byte_size)]
    pub max_body_memory: usize,
}

/// A Go duration, as everywhere else in volops (`10s`, `2m`, `1m30s`), above zero.
fn go_duration(s: &str) -> Result<Duration, String> {
    match volops_shared::duration::parse(s) {
        Ok(d) if d.is_zero() => Err("must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// A whole number of bytes written as a Kubernetes quantity (`8Mi`, `500Ki`, `1048576`).
fn byte_size(s: &str) -> Result<usize, String> {
    let q = Quantity::parse(s).map_err(|e| e.to_string())?;
    if !q.is_positive() || q.nanos() % 1_000_000_000 != 0 {
        return Err("must be a positive whole number of bytes".into());
    }
    usize::try_from(q.bytes_ceil()).map_err(|_| "too large".into())
}

impl ServerArgs {
    /// Writes the flags into `config` (after `config.probe_listen` is set).
    pub fn apply(self, config: &mut Config) -> Result<(), String> {
        let limits = Limits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_body_bytes: self.max_body_bytes,
            body_memory_bytes: self.max_body_memory,
        };
        // Large bodies may take three quarters of the memory budget (limits.rs).
        if limits.body_ceiling(limits.max_body_bytes) < limits.max_body_bytes {
            return Err(format!(
                "--max-body-memory ({}) must hold one body of --max-body-bytes ({}) in three quarters of it",
                self.max_body_memory, self.max_body_bytes
            ));
        }
        config.limits = limits;
        config.request_timeout = self.request_timeout;
        config.client_ca = self.client_ca;
        config.metrics_listen = (self.metrics_listen != config.probe_listen).then_some(self.metrics_listen);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_as_kubernetes_and_go_write_them() {
        assert_eq!(byte_size("8Mi"), Ok(8 << 20));
        assert_eq!(byte_size("1500"), Ok(1500));
        assert!(byte_size("0").is_err() && byte_size("1.5").is_err() && byte_size("8MB").is_err());
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(go_duration("0s").is_err() && go_duration("10").is_err());
    }

    #[test]
    fn metrics_on_the_probe_address_share_its_listener_and_a_too_small_budget_is_refused() {
        let args = |extra: &[&str]| {
            #[derive(clap::Parser)]
            struct Cli {
                #[command(flatten)]
                server: ServerArgs,
            }
            let argv = ["volops-webhook"].iter().chain(extra);
            <Cli as clap::Parser>::try_parse_from(argv).unwrap().server
        };
        let mut config = Config::new("c".into(), "k".into());
        args(&[]).apply(&mut config).unwrap();
        assert_eq!(
            config.metrics_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 9090)))
        );
        assert_eq!(config.limits, Limits::default());
        args(&["--metrics-listen", "0.0.0.0:8080"])
            .apply(&mut config)
            .unwrap();
        assert_eq!(config.metrics_listen, None);
        let err = args(&["--max-body-memory", "8Mi"])
            .apply(&mut config)
            .unwrap_err();
        assert!(err.contains("--max-body-memory"), "{err}");
    }
}
