//! `volops-controller [--probe-listen A] [--metrics-listen A] [--pause-handshake kubedb|self]
//! [--leader-election] [--lease-namespace NS] [--log-format text|json] [--pvc-parallelism N]
//! [--state-namespace NS] [--autoscaler-interval 60s] [--usage-source kubelet|prometheus]
//! [--prometheus-url URL]`.

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use volops_controller::{Config, LeaderConfig, PauseHandshake};

// mimalloc (as linkerd's policy-controller uses jemalloc): a third less CPU than glibc's malloc
// for the many short-lived JSON values of watches and reviews (docs/PERFORMANCE.md); its
// transparent-huge-page use is off to keep the resident memory small.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Handshake {
    Kubedb,
    #[value(name = "self")]
    SelfPause,
}

/// `--volume-expansion-owner` (controller/DESIGN-NOTES.md, "One owner per request").
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OwnerArg {
    Volops,
    Kubedb,
}

/// `--usage-source` (docs/ARCHITECTURE.md, "Storage autoscaling at run time").
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SourceArg {
    /// The kubelets' Summary API through the API server's node proxy.
    Kubelet,
    /// Prometheus's `kubelet_volume_stats_*` (give `--prometheus-url`).
    Prometheus,
}

/// Reads a duration such as `60s`, `1m` or `500ms` (a Go duration, as the chart writes it).
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = volops_shared::duration::parse(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("the interval must be above 0".into());
    }
    Ok(d)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "volops-controller",
    about = "Carries out KubeDB volume expansion ops requests"
)]
struct Args {
    /// Address of /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    probe_listen: SocketAddr,
    /// Address of /metrics; the --probe-listen address serves it there as before.
    #[arg(long, default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
    /// How the database is paused during an expansion.
    #[arg(long, value_enum, default_value = "kubedb")]
    pause_handshake: Handshake,
    /// Run the controllers only while holding the lease.
    #[arg(long)]
    leader_election: bool,
    /// Namespace of the lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Online mode: at most N PVCs of one request resizing at a time (0 = all at once).
    #[arg(long, default_value_t = 0)]
    pvc_parallelism: usize,
    /// The controller's own namespace: each request's saved state is a Secret there.
    #[arg(long, env = "POD_NAMESPACE", default_value = volops_controller::DEFAULT_STATE_NAMESPACE)]
    state_namespace: String,
    /// Who acts on VolumeExpansion requests: `volops`, or `kubedb` to leave them all to
    /// KubeDB's ops-manager (give the webhook the same).
    #[arg(
        long,
        value_enum,
        env = "VOLOPS_VOLUME_EXPANSION_OWNER",
        default_value = "volops"
    )]
    volume_expansion_owner: OwnerArg,
    /// How often the storage autoscaler reads usage and decides for every autoscaler.
    #[arg(long, default_value = "60s", value_parser = parse_interval)]
    autoscaler_interval: std::time::Duration,
    /// Where volume usage comes from.
    #[arg(long, value_enum, default_value = "kubelet")]
    usage_source: SourceArg,
    /// The Prometheus server's base URL (with `--usage-source prometheus`).
    #[arg(long, required_if_eq("usage_source", "prometheus"))]
    prometheus_url: Option<String>,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    init_logs(args.log_format);
    let identity = std::env::var("POD_NAME").unwrap_or_else(|_| Config::default().identity);
    let config = Config {
        pause_handshake: match args.pause_handshake {
            Handshake::Kubedb => PauseHandshake::Kubedb,
            Handshake::SelfPause => PauseHandshake::SelfPause,
        },
        leader_election: args.leader_election.then(|| LeaderConfig {
            lease_name: "volops-controller".into(),
            namespace: args.lease_namespace.clone(),
            duration: 15,
            grace: 5,
        }),
        probe_listen: Some(args.probe_listen),
        metrics_listen: Some(args.metrics_listen),
        identity,
        pvc_parallelism: std::num::NonZeroUsize::new(args.pvc_parallelism),
        state_namespace: args.state_namespace.clone(),
        volume_expansion_owner: match args.volume_expansion_owner {
            OwnerArg::Volops => volops_shared::facts::VolumeExpansionOwner::Volops,
            OwnerArg::Kubedb => volops_shared::facts::VolumeExpansionOwner::Kubedb,
        },
        autoscaler: volops_controller::autoscaler::AutoscalerConfig {
            interval: args.autoscaler_interval,
            source: match (args.usage_source, args.prometheus_url.clone()) {
                (SourceArg::Prometheus, Some(url)) => {
                    volops_controller::autoscaler::UsageSourceConfig::Prometheus { url }
                }
                _ => volops_controller::autoscaler::UsageSourceConfig::Kubelet,
            },
        },
        ..Config::default()
    };
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("volops-controller: cannot build a Kubernetes client: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match volops_controller::run(client, config, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("volops-controller: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
