//! `volops-sandbox serve --listen 127.0.0.1:6443 --kubeconfig-out PATH [--state FILE] [--no-cluster]
//! [--nodes N] [--kubelet-metrics-listen 127.0.0.1:10255]`
//! `volops-sandbox fill-volume --kubeconfig PATH -n NAMESPACE CLAIM USED` (`85%`, `5Gi`)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
        /// How many nodes the simulated cluster registers (sandbox-node-0, ...).
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Plain-HTTP address of the kubelets' volume metrics for Prometheus (`/metrics`),
        /// like a kubelet's read-only port.
        #[arg(long, default_value = "127.0.0.1:10255")]
        kubelet_metrics_listen: SocketAddr,
    },
    /// Fill a volume of a running sandbox (the cluster's own control: what the database
    /// writing to it would do), through its admin endpoint.
    FillVolume {
        /// The sandbox's admin kubeconfig (`serve --kubeconfig-out`).
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// The PersistentVolumeClaim whose volume to fill.
        claim: String,
        /// How much is used afterwards: a percentage of the capacity (`85%`) or bytes (`5Gi`).
        used: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().cmd {
        Cmd::Serve {
            listen,
            kubeconfig_out,
            state,
            no_cluster,
            event_ttl,
            nodes,
            kubelet_metrics_listen,
        } => {
            let opts = SandboxOptions {
                listen,
                kubeconfig_out: Some(kubeconfig_out),
                state_file: state,
                cluster: (!no_cluster).then(|| ClusterConfig::default().with_nodes(nodes)),
                event_ttl,
                kubelet_metrics_listen,
                ..Default::default()
            };
            serve(opts).await
        }
        Cmd::FillVolume {
            kubeconfig,
            namespace,
            claim,
            used,
        } => match fill_volume(&kubeconfig, &namespace, &claim, &used).await {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("volops-sandbox: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(opts: SandboxOptions) -> ExitCode {
    let kubeconfig = opts.kubeconfig_out.clone().unwrap_or_default();
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
        kubeconfig.display()
    );
    if let Some(url) = sandbox.kubelet_metrics_url() {
        println!("kubelet volume metrics (plain HTTP, no credentials): {url}");
    }
    wait_for_signal().await;
    match sandbox.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("volops-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `PUT /sandbox/v1/volumes/{namespace}/{claim}` with the kubeconfig's credentials; the
/// answer as JSON text.
async fn fill_volume(kubeconfig: &Path, namespace: &str, claim: &str, used: &str) -> Result<String, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let client = kube::Client::try_from(cfg).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&serde_json::json!({"used": used})).map_err(|e| e.to_string())?;
    let req = http::Request::put(format!("/sandbox/v1/volumes/{namespace}/{claim}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| e.to_string())?;
    let answer: serde_json::Value = client.request(req).await.map_err(|e| e.to_string())?;
    Ok(answer.to_string())
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
