//! `volops-webhook`: the admission webhook binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use tokio_util::sync::CancellationToken;
use volops_shared::facts::{DirectGrowth, OtherTypes, VolumeExpansionOwner};
use volops_webhook::Config;
use volops_webhook::server_args::ServerArgs;

// mimalloc (as linkerd's policy-controller uses jemalloc): a third less CPU than glibc's malloc
// for the many short-lived JSON values of watches and reviews (docs/PERFORMANCE.md); its
// transparent-huge-page use is off to keep the resident memory small.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// `--direct-growth` (README.md, "What the webhook denies").
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DirectGrowthArg {
    Deny,
    WithinPolicy,
}

/// `--other-types` (README.md, "Other ops types, and one owner per request").
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OtherTypesArg {
    Pass,
    Deny,
}

/// `--volume-expansion-owner` (controller/DESIGN-NOTES.md, "One owner per request").
#[derive(Clone, Copy, Debug, ValueEnum)]
enum OwnerArg {
    Volops,
    Kubedb,
}

/// volops admission webhook (HTTPS AdmissionReview v1 server).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Serving certificate chain (PEM); reloaded when it changes.
    #[arg(long, env = "VOLOPS_TLS_CERT")]
    tls_cert: PathBuf,
    /// Serving private key (PEM).
    #[arg(long, env = "VOLOPS_TLS_KEY")]
    tls_key: PathBuf,
    /// HTTPS address for /validate and /mutate.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Plain-HTTP address for /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    probe_listen: SocketAddr,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Ops requests of types volops does not handle: `pass` them through untouched (KubeDB's
    /// ops-manager runs them) or `deny` them.
    #[arg(long, value_enum, env = "VOLOPS_OTHER_TYPES", default_value = "pass")]
    other_types: OtherTypesArg,
    /// The old switch for `--other-types pass` (now the default); still accepted.
    #[arg(long, hide = true)]
    pass_through_other_types: bool,
    /// Who acts on VolumeExpansion requests: `volops`, or `kubedb` to admit them untouched
    /// for KubeDB's ops-manager (the controller must be given the same).
    #[arg(
        long,
        value_enum,
        env = "VOLOPS_VOLUME_EXPANSION_OWNER",
        default_value = "volops"
    )]
    volume_expansion_owner: OwnerArg,
    /// The controller's user: the only one who may write volops's annotations on ops requests;
    /// its writes are admitted unchecked (the chart passes its ServiceAccount's).
    #[arg(
        long,
        env = "VOLOPS_CONTROLLER_USERNAME",
        default_value = "system:serviceaccount:volops-system:volops-controller"
    )]
    controller_username: String,
    /// Storage grown outside an ops request: `deny` it for a database's volumes (any other PVC
    /// is judged by the policies), or judge all of it `within-policy`.
    #[arg(long, value_enum, env = "VOLOPS_DIRECT_GROWTH", default_value = "deny")]
    direct_growth: DirectGrowthArg,
    /// Limits, client certificates, metrics listener.
    #[command(flatten)]
    server: ServerArgs,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    init_logs(args.log_format);
    let mut config = Config::new(args.tls_cert, args.tls_key);
    config.listen = args.listen;
    config.probe_listen = args.probe_listen;
    config.options.other_types = match (args.other_types, args.pass_through_other_types) {
        (OtherTypesArg::Pass, _) | (_, true) => OtherTypes::Pass,
        (OtherTypesArg::Deny, false) => OtherTypes::Deny,
    };
    config.options.volume_expansion_owner = match args.volume_expansion_owner {
        OwnerArg::Volops => VolumeExpansionOwner::Volops,
        OwnerArg::Kubedb => VolumeExpansionOwner::Kubedb,
    };
    // Issue 18 (admission side): who the controller is, and how direct growth is judged.
    config.options.controller_username = Some(args.controller_username.into());
    config.options.direct_growth = match args.direct_growth {
        DirectGrowthArg::Deny => DirectGrowth::Deny,
        DirectGrowthArg::WithinPolicy => DirectGrowth::WithinPolicy,
    };
    if let Err(e) = args.server.apply(&mut config) {
        tracing::error!(error = %e, "invalid arguments");
        return ExitCode::from(2);
    }
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes client configuration");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let running = match volops_webhook::start(config, client, shutdown.clone()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "webhook failed to start");
            return ExitCode::FAILURE;
        }
    };
    terminated().await;
    tracing::info!("termination signal received; shutting down");
    shutdown.cancel();
    running.wait().await;
    ExitCode::SUCCESS
}
