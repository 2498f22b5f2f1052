//! Starting the webhook in-process: bind both listeners, load the certificate, start the
//! reloader (and, with a client, the reflectors), and serve until the token is cancelled.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use volops_shared::facts::RuleOptions;

use crate::caches::Caches;
use crate::metrics::Metrics;
use crate::reload::{ReloadConfig, WatchError};
use crate::tls::{CertResolver, TlsError};
use crate::{probes, reflectors, reload, routes, server, tls};

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
    /// Where the probes and metrics are served.
    pub probe_addr: SocketAddr,
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
    let views = caches.views.clone();
    let mut running = start_with_caches(config, caches, shutdown.clone()).await?;
    let mut reflector_tasks = reflectors::spawn_all(&client, writers, views, &shutdown);
    running
        .tasks
        .spawn(async move { while reflector_tasks.join_next().await.is_some() {} });
    Ok(running)
}

/// Starts serving admission on caches filled by someone else (reflectors, or a test through
/// the caches' writers). Returns once both listeners are bound and the certificate is loaded.
pub async fn start_with_caches(
    config: Config,
    caches: Caches,
    shutdown: CancellationToken,
) -> Result<Running, RunError> {
    let resolver = CertResolver::new(tls::load_pair(&config.tls_cert, &config.tls_key)?);
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(resolver.clone())?));
    let https = bind("https", config.listen).await?;
    let probe = bind("probe", config.probe_listen).await?;
    let addr = |l: &TcpListener, a: SocketAddr| l.local_addr().unwrap_or(a);
    let (https_addr, probe_addr) = (addr(&https, config.listen), addr(&probe, config.probe_listen));
    let metrics = Arc::new(Metrics::new());
    let serving = Arc::new(AtomicBool::new(false));

    let mut tasks = JoinSet::new();
    let reload_cfg = ReloadConfig {
        cert: config.tls_cert.clone(),
        key: config.tls_key.clone(),
        debounce: config.reload_debounce,
        interval: config.reload_interval,
    };
    let reloader = reload::spawn(reload_cfg, resolver, shutdown.clone())?;
    tasks.spawn(async move {
        let _ = reloader.await;
    });
    let app = Arc::new(routes::AppState {
        caches: caches.clone(),
        options: config.options.clone(),
        metrics: metrics.clone(),
    });
    tasks.spawn(server::serve_tls(
        https,
        acceptor,
        routes::router(app, config.request_timeout),
        shutdown.clone(),
    ));
    let probe_state = Arc::new(probes::ProbeState {
        caches,
        metrics: metrics.clone(),
        serving: serving.clone(),
    });
    tasks.spawn(server::serve_plain(probe, probes::router(probe_state), shutdown));
    serving.store(true, Ordering::Release);
    tracing::info!(%https_addr, %probe_addr, "volops webhook serving");
    Ok(Running {
        https_addr,
        probe_addr,
        metrics,
        tasks,
    })
}
