//! `volops-sandbox serve --listen 127.0.0.1:6443 --kubeconfig-out PATH [--state FILE] [--no-cluster]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
            },
    } = Cli::parse();
    let opts = SandboxOptions {
        listen,
        kubeconfig_out: Some(kubeconfig_out.clone()),
        state_file: state,
        cluster: (!no_cluster).then(ClusterConfig::default),
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
