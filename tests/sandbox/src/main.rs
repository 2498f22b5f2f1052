//! `volops-sandbox serve --listen 127.0.0.1:6443 --kubeconfig-out PATH [--state FILE] [--no-cluster]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use volops_sandbox::{ClusterConfig, Sandbox, SandboxOptions};

#[derive(Debug, Parser)]
#[command(
    name = "volops-sandbox",
    version,
    about = "Kubernetes-compatible API server for volops tests and the demo"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the API over HTTPS until SIGINT/SIGTERM.
    Serve {
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// Where to write the kubeconfig for kubectl and kube-rs.
        #[arg(long)]
        kubeconfig_out: PathBuf,
        /// JSON snapshot loaded at start and written on shutdown.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Do not run the simulated cluster controllers.
        #[arg(long)]
        no_cluster: bool,
        /// How long Events are kept after their last write (kube-apiserver's --event-ttl).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        event_ttl: Duration,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Cli {
        cmd:
            Cmd::Serve {
                listen,
                kubeconfig_out,
                state,
                no_cluster,
                event_ttl,
            },
    } = Cli::parse();
    let opts = SandboxOptions {
        listen,
        kubeconfig_out: Some(kubeconfig_out.clone()),
        state_file: state,
        cluster: (!no_cluster).then(ClusterConfig::default),
        event_ttl,
        ..Default::default()
    };
    let sandbox = match Sandbox::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("volops-sandbox: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "volops-sandbox serving {} (kubeconfig {})",
        sandbox.url(),
        kubeconfig_out.display()
    );
    wait_for_signal().await;
    match sandbox.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("volops-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// A Go-style duration (`1h`, `30m`, `1h30m`, `90s`), as kube-apiserver's flags take them.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    Duration::try_from(d).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations_parse() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(super::parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(super::parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(super::parse_duration("-5m").is_err());
        assert!(super::parse_duration("soon").is_err());
    }
}
