//! [`Harness`]: the sandbox (with the simulated cluster), the volops CRDs, the webhook on
//! loopback HTTPS registered as the chart registers it, and the controller - one process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;
use tokio::sync::oneshot;
use volops_controller::{Metrics, PauseHandshake};
use volops_sandbox::{ClusterConfig, Sandbox, SandboxOptions};
use volops_shared::DatabaseKind;

use crate::apply::{self, FIELD_MANAGER};
use crate::chart;
use crate::chart_config::{self, RELEASE_NS, SERVICE, Target};
use crate::error::{Error, Result, io_ctx, kube_ctx};
use crate::identity;
use crate::webhook::Webhook;

/// How to start a [`Harness`].
#[derive(Clone, Debug)]
pub struct HarnessOptions {
    pub cluster: ClusterConfig,
    /// Install `volops_shared::crd::all()` (off when a test applies the chart's crds/).
    pub install_crds: bool,
    /// Register the chart-shaped webhook configurations (Service target).
    pub register_webhooks: bool,
    pub start_controller: bool,
    /// Where to write the kubeconfig (default: a private temporary directory).
    pub kubeconfig_out: Option<PathBuf>,
    /// Deadline of each internal wait (webhook ready, ...).
    pub timeout: Duration,
    /// The controller's storage autoscaler (default: every second, kubelet usage).
    pub autoscaler: volops_controller::autoscaler::AutoscalerConfig,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        Self {
            cluster: ClusterConfig::fast(),
            install_crds: true,
            register_webhooks: true,
            start_controller: true,
            kubeconfig_out: None,
            timeout: Duration::from_secs(60),
            autoscaler: volops_controller::autoscaler::AutoscalerConfig {
                interval: Duration::from_secs(1),
                ..Default::default()
            },
        }
    }
}

struct ControllerTask {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<volops_controller::Result<()>>,
}

/// Everything volops needs, running in this process.
pub struct Harness {
    sandbox: Sandbox,
    client: kube::Client,
    /// What the controller runs as: its ServiceAccount, as in a cluster (see `identity`).
    controller_client: kube::Client,
    webhook: Webhook,
    controller: Option<ControllerTask>,
    controller_metrics: Arc<Metrics>,
    _dir: tempfile::TempDir,
    timeout: Duration,
    autoscaler: volops_controller::autoscaler::AutoscalerConfig,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("sandbox", &self.sandbox)
            .field("webhook", &self.webhook)
            .field("controller_running", &self.controller.is_some())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// Starts with [`HarnessOptions::default`].
    pub async fn start_default() -> Result<Harness> {
        Self::start(HarnessOptions::default()).await
    }

    pub async fn start(opts: HarnessOptions) -> Result<Harness> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sandbox = Sandbox::start(SandboxOptions {
            cluster: Some(opts.cluster.clone()),
            kubeconfig_out: opts.kubeconfig_out.clone(),
            ..SandboxOptions::default()
        })
        .await?;
        let client = sandbox.client().await?;
        let controller_client = identity::controller_client(&sandbox).await?;
        let webhook_client = identity::webhook_client(&sandbox).await?;
        let dir = tempfile::tempdir().map_err(io_ctx("temporary directory"))?;
        let mut harness_ns = Namespace::default();
        harness_ns.metadata.name = Some(RELEASE_NS.to_owned());
        Api::<Namespace>::all(client.clone())
            .patch(
                RELEASE_NS,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&harness_ns),
            )
            .await
            .map_err(kube_ctx("creating the release namespace"))?;
        install_chart_rbac(&client).await?;
        if opts.install_crds {
            install_crds(&client).await?;
        }
        let webhook = Webhook::start(webhook_client, dir.path()).await?;
        let https = webhook.https_addr;
        sandbox.set_service_resolver(Arc::new(move |ns: &str, name: &str, _port: u16| {
            (ns == RELEASE_NS && name == SERVICE).then_some(https)
        }));
        if opts.install_crds {
            // Without the CRDs some reflectors cannot list; readiness then waits forever.
            webhook.wait_ready(opts.timeout).await?;
        }
        let mut harness = Harness {
            sandbox,
            client,
            controller_client,
            webhook,
            controller: None,
            controller_metrics: Arc::new(Metrics::default()),
            _dir: dir,
            timeout: opts.timeout,
            autoscaler: opts.autoscaler.clone(),
        };
        if opts.register_webhooks {
            harness.register_webhooks(&Target::default()).await?;
        }
        if opts.start_controller {
            harness.start_controller();
        }
        Ok(harness)
    }

    /// Registers the chart-shaped webhook configurations pointing at `target`.
    pub async fn register_webhooks(&self, target: &Target) -> Result<()> {
        let (m, v) = chart_config::webhook_configurations(&self.webhook.ca_pem, target);
        let objs = [m, v]
            .into_iter()
            .map(|o| {
                serde_json::from_value::<DynamicObject>(o).map_err(|source| Error::Json {
                    context: "webhook configuration".into(),
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        apply::apply_all(&self.client, &objs).await.map(drop)
    }

    /// The sandbox's admin client (`system:masters`), for setting up what a test needs.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The client the controller runs with: its ServiceAccount's user.
    pub fn controller_client(&self) -> kube::Client {
        self.controller_client.clone()
    }

    /// A client acting as the tests' tenant (`identity::TENANT`), bound to `edit` in every
    /// namespace that exists now except the release namespace and the system ones.
    pub async fn tenant_client(&self) -> Result<kube::Client> {
        let namespaces = Api::<Namespace>::all(self.client.clone())
            .list(&Default::default())
            .await
            .map_err(kube_ctx("listing namespaces"))?;
        for ns in namespaces.items {
            let name = ns.metadata.name.unwrap_or_default();
            if name != RELEASE_NS && name != "default" && !name.starts_with("kube-") {
                identity::grant_edit(&self.client, &name, identity::TENANT).await?;
            }
        }
        identity::tenant_client(&self.sandbox, identity::TENANT).await
    }

    pub fn kubeconfig_path(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn webhook(&self) -> &Webhook {
        &self.webhook
    }

    /// The default deadline of waits.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Counters of the controller (kept across restarts).
    pub fn controller_metrics(&self) -> Arc<Metrics> {
        self.controller_metrics.clone()
    }

    pub fn controller_running(&self) -> bool {
        self.controller.as_ref().is_some_and(|c| !c.task.is_finished())
    }

    /// The storage autoscaler's settings for the next [`Harness::start_controller`].
    pub fn set_autoscaler(&mut self, config: volops_controller::autoscaler::AutoscalerConfig) {
        self.autoscaler = config;
    }

    /// Starts the controller in-process as its ServiceAccount (KubeDB pause handshake, no
    /// leader election). A no-op if it is running.
    pub fn start_controller(&mut self) {
        if self.controller_running() {
            return;
        }
        let (stop, rx) = oneshot::channel::<()>();
        let config = volops_controller::Config {
            pause_handshake: PauseHandshake::Kubedb,
            autoscaler: self.autoscaler.clone(),
            ..volops_controller::Config::default()
        };
        let task = tokio::spawn(volops_controller::run_with_metrics(
            self.controller_client.clone(),
            config,
            self.controller_metrics.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        self.controller = Some(ControllerTask { stop, task });
    }

    /// Stops the controller gracefully and returns how its run ended.
    pub async fn stop_controller(&mut self) -> Result<()> {
        let Some(c) = self.controller.take() else {
            return Ok(());
        };
        let _ = c.stop.send(());
        match c.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Invalid(format!("controller stopped with: {e}"))),
            Err(e) => Err(Error::Invalid(format!("controller task: {e}"))),
        }
    }

    /// Kills the controller at whatever point it is (a crash: the task is aborted).
    pub async fn kill_controller(&mut self) {
        if let Some(c) = self.controller.take() {
            c.task.abort();
            let _ = c.task.await;
        }
    }

    /// Server-side applies every document of `yaml`.
    pub async fn apply_yaml(&self, yaml: &str) -> Result<Vec<DynamicObject>> {
        apply::apply_all(&self.client, &apply::documents(yaml, "inline YAML")?).await
    }

    /// Server-side applies every document of the file.
    pub async fn apply_file(&self, path: &Path) -> Result<Vec<DynamicObject>> {
        apply::apply_all(&self.client, &apply::read_documents(path)?).await
    }

    /// The API of a database kind in `ns`.
    pub fn databases(&self, kind: DatabaseKind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &kind.database_resource())
    }

    /// The API of a kind's ops requests in `ns`.
    pub fn ops_requests(&self, kind: DatabaseKind, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &kind.ops_resource())
    }

    /// The PetSets of `ns`: where the sandbox's KubeDB-like provisioner runs every database
    /// (unless [`ClusterConfig::redis_workload`] puts Redis on StatefulSets).
    pub fn petsets(&self, ns: &str) -> Api<DynamicObject> {
        self.dynamic(&petset_resource(), ns)
    }

    /// A namespaced API for any resource.
    pub fn dynamic(&self, ar: &ApiResource, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, ar)
    }

    /// Stops the controller, the webhook and the sandbox.
    pub async fn shutdown(mut self) -> Result<()> {
        let stopped = self.stop_controller().await;
        self.webhook.shutdown().await;
        self.sandbox.shutdown().await?;
        stopped
    }
}

/// KubeDB's `apps.k8s.appscode.com/v1 PetSet`.
pub fn petset_resource() -> ApiResource {
    volops_shared::WorkloadKind::PetSet.resource()
}

/// Applies the RBAC of the chart as `helm install` renders it with default values: the
/// webhook's and the controller's ServiceAccounts and roles, and the tenant roles.
pub async fn install_chart_rbac(client: &kube::Client) -> Result<()> {
    let chart = chart::default_render()?;
    for file in ["controller-rbac.yaml", "webhook-rbac.yaml", "tenant-rbac.yaml"] {
        apply::apply_all(client, chart.file(file)).await?;
    }
    Ok(())
}

/// Creates (or updates) every volops CRD and waits until each is served.
pub async fn install_crds(client: &kube::Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in volops_shared::crd::all()? {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut value = serde_json::to_value(&crd).map_err(|source| Error::Json {
            context: format!("CRD {name}"),
            source,
        })?;
        value["apiVersion"] = json!("apiextensions.k8s.io/v1");
        value["kind"] = json!("CustomResourceDefinition");
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(kube_ctx(format!("installing CRD {name}")))?;
    }
    Ok(())
}
