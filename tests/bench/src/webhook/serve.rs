//! The child processes under test: the real webhook (`volops_webhook::start`, as its binary
//! runs it), or a no-op admission handler on the webhook's own TLS stack.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use volops_webhook::review::{AdmissionResponse, ReviewOut};
use volops_webhook::{server, tls};

use crate::proc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Handler {
    /// The volops webhook with its reflectors on the KUBECONFIG cluster.
    Webhook,
    /// Reads the review, takes `request.uid`, allows.
    Noop,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long, value_enum)]
    pub handler: Handler,
    #[arg(long)]
    pub tls_cert: PathBuf,
    #[arg(long)]
    pub tls_key: PathBuf,
    /// Every connection and body limit set out of reach (the webhook before it had them,
    /// but for its 16 KiB HTTP/1.1 head buffer).
    #[arg(long)]
    pub limits_off: bool,
    /// Lower the open-file limit (soft and hard) to this first, as a container's may be.
    #[arg(long)]
    pub nofile: Option<u64>,
}

/// Limits no flood of `volops-bench webhook-flood` reaches.
fn limits_off() -> volops_webhook::limits::Limits {
    volops_webhook::limits::Limits {
        header_read_timeout: std::time::Duration::from_secs(3600),
        idle_timeout: std::time::Duration::from_secs(3600),
        max_connections: 1 << 30,
        max_body_bytes: volops_webhook::routes::MAX_BODY,
        body_memory_bytes: 1 << 40,
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let shutdown = CancellationToken::new();
    if let Some(n) = args.nofile {
        volops_webhook::fd_limit::set_nofile(n).context("lowering the open-file limit")?;
    }
    match args.handler {
        Handler::Webhook => {
            let mut config = volops_webhook::Config::new(args.tls_cert, args.tls_key);
            config.listen = loopback();
            config.probe_listen = loopback();
            if args.limits_off {
                config.limits = limits_off();
                config.fit_open_files = false;
            }
            let client = kube::Client::try_default()
                .await
                .context("no Kubernetes client configuration")?;
            let running = volops_webhook::start(config, client, shutdown.clone()).await?;
            proc::announce_ready(&serde_json::json!({
                "https_addr": running.https_addr.to_string(),
                "probe_addr": running.probe_addr.to_string(),
            }));
            terminated().await?;
            shutdown.cancel();
            running.wait().await;
        }
        Handler::Noop => {
            let tls = tls::ServerTls::load(&args.tls_cert, &args.tls_key, None)?;
            let listener = tokio::net::TcpListener::bind(loopback()).await?;
            let addr = listener.local_addr()?;
            // The webhook's own connection limits, so both run the same server.
            let serving = tokio::spawn(server::serve_tls(
                listener,
                tls,
                noop_router(),
                volops_webhook::limits::Limits::default(),
                Arc::new(volops_webhook::metrics::Metrics::new()),
                shutdown.clone(),
            ));
            proc::announce_ready(&serde_json::json!({"https_addr": addr.to_string()}));
            terminated().await?;
            shutdown.cancel();
            serving.await.context("no-op server task")?;
        }
    }
    Ok(())
}

async fn terminated() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    Ok(())
}

/// The least any admission webhook does.
pub fn noop_router() -> Router {
    Router::new()
        .route("/validate", post(noop))
        .route("/mutate", post(noop))
}

#[derive(Deserialize)]
struct UidOnly {
    request: Option<UidRequest>,
}

#[derive(Deserialize)]
struct UidRequest {
    uid: String,
}

async fn noop(body: Bytes) -> Response {
    noop_answer(&body)
}

/// The no-op's answer to one review body.
pub fn noop_answer(body: &[u8]) -> Response {
    let uid = match serde_json::from_slice::<UidOnly>(body) {
        Ok(UidOnly { request: Some(r) }) => r.uid,
        _ => return (StatusCode::BAD_REQUEST, "no AdmissionReview request").into_response(),
    };
    match serde_json::to_vec(&ReviewOut::new(AdmissionResponse::allow(&uid, Vec::new()))) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
