//! Starting the webhook in-process: bind the listeners, load the certificate (and client CA),
//! start the reloader (and, with a client, the reflectors), and serve until the token is
//! cancelled.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use volops_shared::facts::RuleOptions;

use crate::body::BodyLimits;
use crate::caches::Caches;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::reload::{ReloadConfig, WatchError};
use crate::tls::{ServerTls, TlsError};
use crate::{fd_limit, probes, reflectors, reload, routes, server};

/// Everything the webhook is started with (the CLI maps onto it).
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub probe_listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub options: RuleOptions,
    /// Per admission request, body read included; well under kube-apiserver's 10 s.
    pub request_timeout: Duration,
    pub reload_debounce: Duration,
    pub reload_interval: Duration,
    /// Connection and body limits of the HTTPS listener.
    pub limits: Limits,
    /// Require client certificates signed by this CA (PEM), reloaded like the serving pair.
    pub client_ca: Option<PathBuf>,
    /// `/metrics` on a listener of its own; None serves it on the probe listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Raise the open-file limit to its maximum and keep `limits.max_connections` below it
    /// (webhook/src/fd_limit.rs); off only to measure the webhook without it.
    pub fit_open_files: bool,
}

impl Config {
    /// Defaults for everything but the certificate paths.
    pub fn new(tls_cert: PathBuf, tls_key: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            probe_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            tls_cert,
            tls_key,
            options: RuleOptions::default(),
            request_timeout: Duration::from_secs(5),
            reload_debounce: Duration::from_millis(200),
            reload_interval: Duration::from_secs(60),
            limits: Limits::default(),
            client_ca: None,
            metrics_listen: None,
            fit_open_files: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("binding {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// A running webhook.
pub struct Running {
    /// Where HTTPS (admission) is served; the real port when `listen` asked for port 0.
    pub https_addr: SocketAddr,
    /// Where the probes are served.
    pub probe_addr: SocketAddr,
    /// Where `/metrics` is served (the probe address without `metrics_listen`).
    pub metrics_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits until every server task has stopped (after the shutdown token fired).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { what, addr, source })
}

/// Starts the webhook on a kube client: reflectors fill the caches, then serves as [`start_with_caches`].
pub async fn start(
    config: Config,
    client: kube::Client,
    shutdown: CancellationToken,
) -> Result<Running, RunError> {
    let (caches, writers) = Caches::new();
    let mut running = start_with_caches(config, caches, shutdown.clone()).await?;
    let mut reflector_tasks = reflectors::spawn_all(&client, writers, &shutdown);
    running
        .tasks
        .spawn(async move { while reflector_tasks.join_next().await.is_some() {} });
    Ok(running)
}

/// The connection limits, capped to what the open-file limit holds when asked to fit it.
fn connection_limits(config: &Config) -> Limits {
    let mut limits = config.limits.clone();
    if config.fit_open_files {
        limits.max_connections = fd_limit::connection_cap(limits.max_connections, fd_limit::raise_nofile());
    }
    if limits.max_connections < config.limits.max_connections {
        tracing::warn!(
            max_connections = limits.max_connections,
            asked = config.limits.max_connections,
            "the open-file limit holds fewer connections than asked; capping there"
        );
    }
    limits
}

/// Probes on `probe`, and metrics there too unless they have a listener of their own.
fn serve_probes(
    tasks: &mut JoinSet<()>,
    probe: TcpListener,
    metrics: Option<TcpListener>,
    state: Arc<probes::ProbeState>,
    shutdown: CancellationToken,
) {
    match metrics {
        Some(listener) => {
            let metrics_router = probes::metrics_router(state.clone());
            tasks.spawn(server::serve_plain(listener, metrics_router, shutdown.clone()));
            tasks.spawn(server::serve_plain(probe, probes::probes_router(state), shutdown));
        }
        None => {
            tasks.spawn(server::serve_plain(probe, probes::router(state), shutdown));
        }
    }
}

/// Starts serving admission on caches filled by someone else (reflectors, or a test through
/// the caches' writers). Returns once the listeners are bound and the certificate is loaded.
pub async fn start_with_caches(
    config: Config,
    caches: Caches,
    shutdown: CancellationToken,
) -> Result<Running, RunError> {
    let tls = ServerTls::load(&config.tls_cert, &config.tls_key, config.client_ca.as_deref())?;
    let https = bind("https", config.listen).await?;
    let probe = bind("probe", config.probe_listen).await?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some((bind("metrics", addr).await?, addr)),
        None => None,
    };
    let addr = |l: &TcpListener, a: SocketAddr| l.local_addr().unwrap_or(a);
    let (https_addr, probe_addr) = (addr(&https, config.listen), addr(&probe, config.probe_listen));
    let metrics_addr = metrics_listener.as_ref().map_or(probe_addr, |(l, a)| addr(l, *a));
    let metrics = Arc::new(Metrics::new());
    tls.resolver()
        .report_expiry_to(metrics.certificate_expiry.clone());
    let serving = Arc::new(AtomicBool::new(false));
    let limits = connection_limits(&config);

    let mut tasks = JoinSet::new();
    let reload_cfg = ReloadConfig {
        cert: config.tls_cert.clone(),
        key: config.tls_key.clone(),
        debounce: config.reload_debounce,
        interval: config.reload_interval,
    };
    let reloader = reload::spawn(reload_cfg, tls.clone(), shutdown.clone())?;
    tasks.spawn(async move {
        let _ = reloader.await;
    });
    let app = Arc::new(routes::AppState {
        caches: caches.clone(),
        options: config.options.clone(),
        metrics: metrics.clone(),
    });
    let body_limits =
        BodyLimits::new(config.request_timeout, &limits).reporting_to(metrics.body_memory.clone());
    tasks.spawn(server::serve_tls(
        https,
        tls,
        routes::router_with(app, body_limits),
        limits,
        metrics.clone(),
        shutdown.clone(),
    ));
    let probe_state = Arc::new(probes::ProbeState {
        caches,
        metrics: metrics.clone(),
        serving: serving.clone(),
    });
    serve_probes(
        &mut tasks,
        probe,
        metrics_listener.map(|(l, _)| l),
        probe_state,
        shutdown,
    );
    serving.store(true, Ordering::Release);
    tracing::info!(%https_addr, %probe_addr, %metrics_addr, "volops webhook serving");
    Ok(Running {
        https_addr,
        probe_addr,
        metrics_addr,
        metrics,
        tasks,
    })
}
