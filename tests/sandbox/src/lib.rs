//! volops-sandbox: a Kubernetes-compatible API server (HTTPS, in-process) for tests and the
//! demo, optionally with the simulated cluster controllers on top.
//!
//! ```no_run
//! # async fn demo() -> Result<(), volops_sandbox::SandboxError> {
//! let sandbox = volops_sandbox::Sandbox::start(Default::default()).await?;
//! let client = sandbox.client().await?;
//! # drop(client); sandbox.shutdown().await?; Ok(()) }
//! ```

mod admit;
mod api;
mod discovery;
mod events;
pub mod faults;
mod kubeconfig;
mod machinery;
mod meta;
mod ops;
mod registry;
mod route;
mod selectors;
mod server;
mod snapshot;
mod store;
mod table;
mod watch;
mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch as tokio_watch;

pub use faults::{FaultConfig, FaultRule, Faults};
pub use kubeconfig::TOKEN;
pub use volops_sandbox_cluster::{ClusterConfig, ClusterHandle};

/// Errors starting or stopping the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("certificates: {0}")]
    Certs(#[from] volops_certs::CertError),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("state file: {0}")]
    State(String),
    #[error("building the client: {0}")]
    Client(String),
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where to write the kubeconfig (default: a private temporary directory).
    pub kubeconfig_out: Option<PathBuf>,
    /// JSON snapshot loaded at start (if present) and written on shutdown.
    pub state_file: Option<PathBuf>,
    /// Start the simulated cluster controllers with this config.
    pub cluster: Option<ClusterConfig>,
    /// Most watch events kept per resource for resuming watches (older => 410 Expired).
    pub watch_history: usize,
    /// Watch events older than this are dropped (beyond the newest 100 per resource), like
    /// kube-apiserver's watch cache window, so a long-running sandbox's memory stays flat.
    pub watch_history_age: Duration,
    /// Events are deleted this long after their last write (kube-apiserver's `--event-ttl`).
    pub event_ttl: Duration,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig_out: None,
            state_file: None,
            cluster: None,
            watch_history: 20_000,
            watch_history_age: Duration::from_secs(300),
            event_ttl: Duration::from_secs(3600),
            bookmark_interval: Duration::from_secs(10),
        }
    }
}

/// Resolves a webhook `service` reference (namespace, name, port) to an address.
pub type ServiceResolver = Arc<dyn Fn(&str, &str, u16) -> Option<SocketAddr> + Send + Sync>;

/// A running sandbox API server.
pub struct Sandbox {
    api: Arc<api::Api>,
    addr: SocketAddr,
    url: String,
    ca_pem: String,
    kubeconfig_path: PathBuf,
    _tempdir: Option<tempfile::TempDir>,
    shutdown_tx: tokio_watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
    state_file: Option<PathBuf>,
    cluster: Option<ClusterHandle>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts the API server (and the simulated cluster if asked).
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| SandboxError::Bind(opts.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| SandboxError::Bind(opts.listen, e))?;
        let bundle = volops_certs::generate(&["localhost".into()], &[addr.ip()], 365)?;
        let acceptor = server::tls_acceptor(&bundle.cert_pem, &bundle.key_pem)?;
        let url = format!("https://{addr}");
        let (shutdown_tx, shutdown_rx) = tokio_watch::channel(false);
        let api = Arc::new(api::Api {
            store: Arc::new(store::Store::new(store::HistoryLimits {
                max_events: opts.watch_history,
                max_age: opts.watch_history_age,
            })),
            registry: RwLock::new(registry::Registry::builtin()),
            faults: Faults::default(),
            admission: admit::Admission::default(),
            authorizer: Arc::new(machinery::AllowAll),
            bookmark_interval: opts.bookmark_interval,
            server_address: addr.to_string(),
            shutdown: shutdown_rx.clone(),
        });
        api.store.set_ttl(&events::store_key(), opts.event_ttl);
        if let Some(state) = &opts.state_file {
            snapshot::load(&api, state)?;
        }
        seed(&api);
        tokio::spawn(events::reap(
            api.store.clone(),
            events::reap_interval(opts.event_ttl, opts.watch_history_age),
            shutdown_rx.clone(),
        ));
        let (kubeconfig_path, tempdir) = match &opts.kubeconfig_out {
            Some(p) => (p.clone(), None),
            None => {
                let dir =
                    tempfile::tempdir().map_err(|e| SandboxError::Io("temporary directory".into(), e))?;
                (dir.path().join("kubeconfig"), Some(dir))
            }
        };
        kubeconfig::write(&kubeconfig_path, &url, &bundle.ca_cert_pem)?;
        let server = tokio::spawn(server::serve(
            listener,
            acceptor,
            server::router(api.clone()),
            shutdown_rx,
        ));
        let mut sandbox = Sandbox {
            api,
            addr,
            url,
            ca_pem: bundle.ca_cert_pem,
            kubeconfig_path,
            _tempdir: tempdir,
            shutdown_tx,
            server: Some(server),
            state_file: opts.state_file.clone(),
            cluster: None,
        };
        if let Some(cfg) = opts.cluster {
            let client = sandbox.client().await?;
            sandbox.cluster = Some(volops_sandbox_cluster::start(client, cfg).await);
        }
        Ok(sandbox)
    }

    /// A kube::Client built from the kubeconfig (the real kube-rs TLS path).
    pub async fn client(&self) -> Result<kube::Client, SandboxError> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig_path)
            .map_err(|e| SandboxError::Client(e.to_string()))?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| SandboxError::Client(e.to_string()))?;
        kube::Client::try_from(cfg).map_err(|e| SandboxError::Client(e.to_string()))
    }

    /// A kube::Client that acts as `username` in `groups` through kube's impersonation headers
    /// (what `kubectl --as --as-group` sends): tenants and ServiceAccounts in tests.
    pub async fn client_as(&self, username: &str, groups: &[&str]) -> Result<kube::Client, SandboxError> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig_path)
            .map_err(|e| SandboxError::Client(e.to_string()))?;
        let mut cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| SandboxError::Client(e.to_string()))?;
        cfg.auth_info.impersonate = Some(username.to_owned());
        cfg.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
        kube::Client::try_from(cfg).map_err(|e| SandboxError::Client(e.to_string()))
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA that signed the serving certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Fault injection handle.
    pub fn faults(&self) -> &Faults {
        &self.api.faults
    }

    /// How webhook `service` references are resolved to addresses.
    pub fn set_service_resolver(&self, resolver: ServiceResolver) {
        self.api.admission.set_service_resolver(resolver);
    }

    /// Watch events the sandbox holds for `resource` in `group` (its history window; for tests
    /// and benchmarks that check memory stays bounded).
    pub fn watch_history_len(&self, group: &str, resource: &str) -> usize {
        self.api
            .store
            .history_len(&(group.to_owned(), resource.to_owned()))
    }

    /// The simulated cluster, if started.
    pub fn cluster(&self) -> Option<&ClusterHandle> {
        self.cluster.as_ref()
    }

    /// Stops serving (open watches end) and writes the state file if configured.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        let _ = self.shutdown_tx.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(path) = &self.state_file {
            snapshot::save(&self.api, path)?;
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// The namespaces every cluster has.
fn seed(api: &api::Api) {
    let key = ("".to_string(), "namespaces".to_string());
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let _ = api.store.write(&key, "", ns, |old, _| {
            if old.is_some() {
                return Err(machinery::ApiError::already_exists("namespaces", ns));
            }
            Ok(store::WriteAction::Put(json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": meta::now(),
                    "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
            })))
        });
    }
}
