//! volops-sandbox: a Kubernetes-compatible API server (HTTPS, in-process) for tests and the
//! demo, optionally with the simulated cluster controllers on top.
//!
//! ```no_run
//! # async fn demo() -> Result<(), volops_sandbox::SandboxError> {
//! let sandbox = volops_sandbox::Sandbox::start(Default::default()).await?;
//! let client = sandbox.client().await?;
//! # drop(client); sandbox.shutdown().await?; Ok(()) }
//! ```
//!
//! # Who may do what
//!
//! Every request is authenticated, impersonated and authorized as kube-apiserver does it:
//!
//! - **Users.** A TLS client certificate chained to the sandbox's client CA (CN = user, O =
//!   groups); else a bearer token: the admin token of the written kubeconfig (user
//!   `sandbox-admin` in `system:masters`, so [`Sandbox::client`] and kubectl with that kubeconfig
//!   may do anything) or a ServiceAccount token from the TokenRequest API
//!   (`system:serviceaccount:<ns>:<name>`; rejected once expired, or once its ServiceAccount, or
//!   the pod it is bound to, is deleted or recreated); else `system:anonymous`. A certificate or
//!   token that is presented but not valid is 401 `Unauthorized`.
//! - **Impersonation** (`Impersonate-User`/`-Group`/`-Uid`/`-Extra-*`, `kubectl --as`) needs
//!   `impersonate` on `users`, `groups`, `serviceaccounts` or `userextras/<key>`, `uids`.
//! - **RBAC** decides every request, non-resource paths included, over Role, ClusterRole,
//!   RoleBinding and ClusterRoleBinding; `system:masters` may do anything. The bootstrap policy
//!   is kube's (`cluster-admin`, aggregated `admin`/`edit`/`view`, `system:discovery`,
//!   `system:basic-user`, `system:public-info-viewer`, `system:auth-delegator`), ClusterRoles
//!   with an `aggregationRule` are filled as kube-controller-manager does, and writing a role or
//!   binding with permissions one does not hold is refused (unless `escalate`/`bind`).
//!   Refusals are kube's 403 bodies. Access reviews (`kubectl auth can-i [--list]`, `whoami`)
//!   and TokenReview are served.
//!
//! # Acting as someone in tests
//!
//! - [`Sandbox::client_as`]: the admin impersonating a user (what `kubectl --as` does).
//! - [`Sandbox::client_with_certificate`] / [`Sandbox::write_user_kubeconfig`]: a user with a
//!   client certificate, as a `kube::Client` or a kubeconfig for kubectl.
//! - [`Sandbox::service_account_token`] (TokenRequest), [`Sandbox::client_with_token`],
//!   [`Sandbox::service_account_client`]: a ServiceAccount as a pod's client is.
//! - [`Sandbox::mount_service_account_token`]: what a pod gets mounted (`token`, `ca.crt`,
//!   `namespace`) plus a kubeconfig reading the token file, to hand to a binary.
//! - [`Sandbox::advance_token_clock`]: lets tokens expire without waiting.
//!
//! # Nodes, kubelet stats and volume usage
//!
//! With the simulated cluster, nodes are registered and pods scheduled onto them; the node
//! proxy serves each kubelet's `/stats/summary` and `/metrics`, [`Sandbox::kubelet_metrics_url`]
//! the volume metrics over plain HTTP, [`Sandbox::fill_volume`] (or
//! `PUT /sandbox/v1/volumes/{ns}/{claim}`) fills a volume, and [`prometheus::Prometheus`] runs a
//! real Prometheus server for tests (`tests/sandbox/KUBELET.md`).

mod admit;
mod api;
mod audit;
mod auth;
mod binding;
mod discovery;
mod events;
pub mod faults;
mod kubeconfig;
mod kubelet_port;
mod machinery;
mod meta;
mod nodeproxy;
mod ops;
pub mod prometheus;
mod registry;
mod route;
mod selectors;
mod server;
mod snapshot;
mod store;
mod table;
mod volumes;
mod watch;
mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch as tokio_watch;

pub use auth::ClientCertificate;
pub use faults::{FaultConfig, FaultRule, Faults};
pub use volops_sandbox_cluster::{
    ClusterConfig, ClusterHandle, Fill, KubeletError, Kubelets, RedisWorkload, VolumeError, VolumeUsage,
};

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
    #[error("the simulated cluster is not running")]
    NoCluster,
    #[error("volume: {0}")]
    Volume(#[from] VolumeError),
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
    /// Keep kube's audit log (level Metadata) of the newest this many requests (0: none).
    pub audit_capacity: usize,
    /// Where the kubelets' metrics are served over plain HTTP for Prometheus (with the
    /// simulated cluster only; port 0 picks a free port): see [`Sandbox::kubelet_metrics_url`].
    pub kubelet_metrics_listen: SocketAddr,
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
            audit_capacity: 0,
            kubelet_metrics_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
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
    kubelet_metrics_addr: Option<SocketAddr>,
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
        let url = format!("https://{addr}");
        let (shutdown_tx, shutdown_rx) = tokio_watch::channel(false);
        let store = Arc::new(store::Store::new(store::HistoryLimits {
            max_events: opts.watch_history,
            max_age: opts.watch_history_age,
        }));
        let auth = auth::Auth::new(store.clone())?;
        let api = Arc::new(api::Api {
            store,
            registry: RwLock::new(registry::Registry::builtin()),
            faults: Faults::default(),
            admission: admit::Admission::default(),
            authorizer: auth.rbac.clone(),
            auth,
            bookmark_interval: opts.bookmark_interval,
            audit: audit::AuditLog::new(opts.audit_capacity),
            server_address: addr.to_string(),
            kubelets: std::sync::OnceLock::new(),
            shutdown: shutdown_rx.clone(),
        });
        api.store.set_ttl(&events::store_key(), opts.event_ttl);
        let acceptor = server::tls_acceptor(
            &bundle.cert_pem,
            &bundle.key_pem,
            api.auth.client_ca.tls_verifier(),
        )?;
        if let Some(state) = &opts.state_file {
            snapshot::load(&api, state)?;
        }
        seed(&api);
        tokio::spawn(events::reap(
            api.store.clone(),
            events::reap_interval(opts.event_ttl, opts.watch_history_age),
            shutdown_rx.clone(),
        ));
        auth::seed(&api.store);
        let (kubeconfig_path, tempdir) = match &opts.kubeconfig_out {
            Some(p) => (p.clone(), None),
            None => {
                let dir =
                    tempfile::tempdir().map_err(|e| SandboxError::Io("temporary directory".into(), e))?;
                (dir.path().join("kubeconfig"), Some(dir))
            }
        };
        let admin = kubeconfig::Credential::Token(&api.auth.admin_token);
        let text = kubeconfig::render(&url, &bundle.ca_cert_pem, auth::ADMIN_USER, &admin);
        kubeconfig::write(&kubeconfig_path, &text)?;
        let server = tokio::spawn(server::serve(
            listener,
            acceptor,
            api.clone(),
            shutdown_rx.clone(),
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
            kubelet_metrics_addr: None,
        };
        if let Some(cfg) = opts.cluster {
            let client = sandbox.client().await?;
            let cluster = volops_sandbox_cluster::start(client, cfg).await;
            let kubelets = cluster.kubelets().clone();
            let _ = sandbox.api.kubelets.set(kubelets.clone());
            sandbox.cluster = Some(cluster);
            sandbox.kubelet_metrics_addr =
                Some(kubelet_port::start(opts.kubelet_metrics_listen, kubelets, shutdown_rx).await?);
        }
        Ok(sandbox)
    }

    /// A kube::Client built from the admin kubeconfig (the real kube-rs TLS path).
    pub async fn client(&self) -> Result<kube::Client, SandboxError> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig_path)
            .map_err(|e| SandboxError::Client(e.to_string()))?;
        client_from(kc).await
    }

    /// A kube::Client whose admin credentials impersonate `username` in `groups` (what
    /// `kubectl --as --as-group` sends); the requests are then authorized as that user.
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

    /// The bearer token of the admin kubeconfig (a `system:masters` member).
    pub fn admin_token(&self) -> &str {
        &self.api.auth.admin_token
    }

    /// A client certificate for `user` in `groups` (CN and O), signed by the sandbox's client CA.
    pub fn client_certificate(&self, user: &str, groups: &[&str]) -> Result<ClientCertificate, SandboxError> {
        self.api.auth.client_ca.issue(user, groups)
    }

    fn kubeconfig_text(&self, user: &str, credential: &kubeconfig::Credential<'_>) -> String {
        kubeconfig::render(&self.url, &self.ca_pem, user, credential)
    }

    /// A kube::Client authenticating with a client certificate for `user` in `groups`.
    pub async fn client_with_certificate(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<kube::Client, SandboxError> {
        let cert = self.client_certificate(user, groups)?;
        let text = self.kubeconfig_text(
            user,
            &kubeconfig::Credential::Certificate {
                cert_pem: &cert.cert_pem,
                key_pem: &cert.key_pem,
            },
        );
        client_from(parse_kubeconfig(&text)?).await
    }

    /// Writes a kubeconfig (for kubectl) that authenticates with a client certificate for
    /// `user` in `groups`.
    pub fn write_user_kubeconfig(
        &self,
        user: &str,
        groups: &[&str],
        path: &Path,
    ) -> Result<(), SandboxError> {
        let cert = self.client_certificate(user, groups)?;
        let text = self.kubeconfig_text(
            user,
            &kubeconfig::Credential::Certificate {
                cert_pem: &cert.cert_pem,
                key_pem: &cert.key_pem,
            },
        );
        kubeconfig::write(path, &text)
    }

    /// A token for ServiceAccount `namespace/name` from the TokenRequest API (one hour, the
    /// API server's audience), as `kubectl create token` gets it.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String, SandboxError> {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        let sas: kube::Api<ServiceAccount> = kube::Api::namespaced(self.client().await?, namespace);
        let tr = sas
            .create_token_request(name, &Default::default(), &TokenRequest::default())
            .await
            .map_err(|e| SandboxError::Client(e.to_string()))?;
        tr.status
            .map(|s| s.token)
            .ok_or_else(|| SandboxError::Client("TokenRequest returned no token".into()))
    }

    /// A kube::Client that sends `token` as its bearer token.
    pub async fn client_with_token(&self, token: &str) -> Result<kube::Client, SandboxError> {
        let text = self.kubeconfig_text("token", &kubeconfig::Credential::Token(token));
        client_from(parse_kubeconfig(&text)?).await
    }

    /// A kube::Client acting as ServiceAccount `namespace/name` with a fresh token of it, as
    /// a pod's client does with its mounted token.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client, SandboxError> {
        let token = self.service_account_token(namespace, name).await?;
        self.client_with_token(&token).await
    }

    /// What a pod of ServiceAccount `namespace/name` gets mounted: writes `token`, `ca.crt` and
    /// `namespace` into `dir`, plus a `kubeconfig` that reads the token file (hand it to a
    /// binary with `--kubeconfig`/`KUBECONFIG`). Returns the kubeconfig's path.
    pub async fn mount_service_account_token(
        &self,
        namespace: &str,
        name: &str,
        dir: &Path,
    ) -> Result<PathBuf, SandboxError> {
        let token = self.service_account_token(namespace, name).await?;
        let token_path = dir.join("token");
        kubeconfig::write(&token_path, &token)?;
        kubeconfig::write(&dir.join("ca.crt"), &self.ca_pem)?;
        kubeconfig::write(&dir.join("namespace"), namespace)?;
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let text = self.kubeconfig_text(&user, &kubeconfig::Credential::TokenFile(&token_path));
        let path = dir.join("kubeconfig");
        kubeconfig::write(&path, &text)?;
        Ok(path)
    }

    /// Moves the clock ServiceAccount tokens are checked against forward by `by`, so a token
    /// expires as if that time had passed.
    pub fn advance_token_clock(&self, by: Duration) {
        self.api
            .auth
            .advance_clock(i64::try_from(by.as_secs()).unwrap_or(i64::MAX));
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

    /// The CA client certificates must chain to (PEM).
    pub fn client_ca_pem(&self) -> &str {
        self.api.auth.client_ca.cert_pem()
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

    /// The audit log (`audit.k8s.io/v1` Events, oldest first; empty unless
    /// `SandboxOptions::audit_capacity` was set).
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        self.api.audit.events()
    }

    /// The simulated cluster, if started.
    pub fn cluster(&self) -> Option<&ClusterHandle> {
        self.cluster.as_ref()
    }

    /// The simulated cluster's kubelets (their stats and volumes), if the cluster runs.
    pub fn kubelets(&self) -> Option<&Kubelets> {
        self.api.kubelets.get()
    }

    /// Fills the volume of claim `namespace/claim` to `fill` (capped at its capacity: a full
    /// disk), as the database writing to it would; the kubelets report it from then on. The
    /// cluster's own control: the same as `PUT /sandbox/v1/volumes/{namespace}/{claim}`.
    pub async fn fill_volume(
        &self,
        namespace: &str,
        claim: &str,
        fill: Fill,
    ) -> Result<VolumeUsage, SandboxError> {
        let kubelets = self.kubelets().ok_or(SandboxError::NoCluster)?;
        Ok(kubelets.fill_volume(namespace, claim, fill).await?)
    }

    /// The plain-HTTP scrape URL of the kubelets' volume metrics (`http://127.0.0.1:PORT/metrics`,
    /// no credentials), if the cluster runs.
    pub fn kubelet_metrics_url(&self) -> Option<String> {
        self.kubelet_metrics_addr.map(|a| format!("http://{a}/metrics"))
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

fn parse_kubeconfig(text: &str) -> Result<kube::config::Kubeconfig, SandboxError> {
    kube::config::Kubeconfig::from_yaml(text).map_err(|e| SandboxError::Client(e.to_string()))
}

async fn client_from(kc: kube::config::Kubeconfig) -> Result<kube::Client, SandboxError> {
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| SandboxError::Client(e.to_string()))?;
    kube::Client::try_from(cfg).map_err(|e| SandboxError::Client(e.to_string()))
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
