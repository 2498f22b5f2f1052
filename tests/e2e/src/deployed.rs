//! The chart as deployed: what `helm install volops charts/volops -n volops-system` puts in a
//! cluster, applied to the sandbox from the Helm engine's render ([`RenderedChart`]), and the
//! real `volops-webhook` and `volops-controller` binaries run as its pods would run them: the
//! arguments and environment of the rendered Deployments, the chart-generated certificate as
//! the mounted TLS Secret, and their ServiceAccounts' tokens (never the admin kubeconfig).
//!
//! A pod's ports are rewritten to free loopback ports, its file paths to a private directory,
//! and the webhook Service resolves to the webhook's port; nothing else is changed.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kube::api::DynamicObject;
use serde_json::Value;
use volops_sandbox::Sandbox;

use crate::apply;
use crate::chart::RenderedChart;
use crate::chart_config::{RELEASE_NS, SERVICE};
use crate::error::{Error, Result, io_ctx};
use crate::webhook::probe_get;

/// The Deployments of the chart and where each mounts its TLS Secret (the webhook only).
const WEBHOOK: &str = "webhook-deployment.yaml";
const CONTROLLER: &str = "controller-deployment.yaml";

/// One component running as its pod would.
pub struct Pod {
    pub name: String,
    pub probe: SocketAddr,
    pub metrics: SocketAddr,
    /// The webhook's HTTPS address (none for the controller).
    pub https: Option<SocketAddr>,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Pod {
    /// Everything the process wrote to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200, failing early (with the log) if the process exits.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if probe_get(self.probe, "/readyz").await.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Invalid(format!(
                    "{} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.log()
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{} /readyz", self.name),
                    after: timeout,
                    last: self
                        .log()
                        .chars()
                        .rev()
                        .take(2000)
                        .collect::<String>()
                        .chars()
                        .rev()
                        .collect(),
                });
            }
            // The probe port has no watch; a short poll with a deadline.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process (as a pod deleted with no grace period) and waits for it.
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// The component's `/metrics` text (Prometheus exposition).
    pub async fn metrics(&self) -> Result<String> {
        probe_get(self.metrics, "/metrics").await
    }
}

/// The chart installed in the sandbox with both components running.
pub struct Deployed {
    pub webhook: Pod,
    pub controller: Pod,
    _dir: tempfile::TempDir,
}

impl Deployed {
    /// Applies the chart's CRDs (and volops's KubeDB kinds, standing in for KubeDB), namespace-scoped objects and webhook configurations to the
    /// sandbox (as its admin, like `helm install`), then starts both binaries and waits until
    /// each is ready.
    pub async fn install(sandbox: &Sandbox, chart: &RenderedChart, timeout: Duration) -> Result<Deployed> {
        let admin = sandbox.client().await?;
        let dir = tempfile::tempdir().map_err(io_ctx("temporary directory"))?;
        let namespace: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NS}}))
        .map_err(|source| Error::Json {
            context: "release namespace".into(),
            source,
        })?;
        apply::apply_all(&admin, &[namespace]).await?;
        apply::apply_all(&admin, &chart.crds()).await?;
        // KubeDB's kinds come with KubeDB, not with the default chart (docs/KUBEDB.md).
        crate::install_crds(&admin).await?;
        for file in [
            "controller-rbac.yaml",
            "webhook-rbac.yaml",
            "tenant-rbac.yaml",
            "webhook-tls-secret.yaml",
            "webhook-service.yaml",
        ] {
            apply::apply_all(&admin, chart.file(file)).await?;
        }

        let tls = chart.webhook_tls()?;
        let tls_dir = dir.path().join("tls");
        std::fs::create_dir_all(&tls_dir).map_err(io_ctx("creating the TLS mount"))?;
        for (name, text) in [
            ("tls.crt", &tls.cert_pem),
            ("tls.key", &tls.key_pem),
            ("ca.crt", &tls.ca_pem),
        ] {
            std::fs::write(tls_dir.join(name), text).map_err(io_ctx(format!("writing {name}")))?;
        }
        let mut webhook = start_pod(sandbox, chart, WEBHOOK, dir.path(), &[("/tls/", &tls_dir)]).await?;
        let https = webhook
            .https
            .ok_or_else(|| Error::Invalid("the webhook Deployment has no --listen".into()))?;
        sandbox.set_service_resolver(std::sync::Arc::new(move |ns: &str, name: &str, _port: u16| {
            (ns == RELEASE_NS && name == SERVICE).then_some(https)
        }));
        webhook.wait_ready(timeout).await?;
        for file in ["mutating-webhook.yaml", "validating-webhook.yaml"] {
            apply::apply_all(&admin, chart.file(file)).await?;
        }
        let mut controller = start_pod(sandbox, chart, CONTROLLER, dir.path(), &[]).await?;
        controller.wait_ready(timeout).await?;
        Ok(Deployed {
            webhook,
            controller,
            _dir: dir,
        })
    }
}

/// Starts the binary of the Deployment rendered into `file` as its pod would run it.
async fn start_pod(
    sandbox: &Sandbox,
    chart: &RenderedChart,
    file: &str,
    dir: &Path,
    mounts: &[(&str, &Path)],
) -> Result<Pod> {
    let deployment = chart
        .file(file)
        .iter()
        .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "Deployment"))
        .ok_or_else(|| Error::Invalid(format!("no Deployment in {file}")))?;
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let pod_spec = deployment
        .data
        .pointer("/spec/template/spec")
        .ok_or_else(|| Error::Invalid(format!("{name}: no pod template")))?;
    let service_account = pod_spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Invalid(format!("{name}: no serviceAccountName")))?;
    let container = chart.container(file)?;
    let binary = binary_of(container)?;

    let pod_dir = dir.join(&name);
    std::fs::create_dir_all(&pod_dir).map_err(io_ctx("creating the pod's directory"))?;
    let kubeconfig = sandbox
        .mount_service_account_token(RELEASE_NS, service_account, &pod_dir)
        .await?;

    let (mut probe, mut metrics, mut https) = (None, None, None);
    let mut args = Vec::new();
    for arg in chart.args(file)? {
        let arg = match arg.split_once('=') {
            Some((flag @ ("--listen" | "--probe-listen" | "--metrics-listen"), _)) => {
                let addr = free_loopback_port()?;
                match flag {
                    "--listen" => https = Some(addr),
                    "--probe-listen" => probe = Some(addr),
                    _ => metrics = Some(addr),
                }
                format!("{flag}={addr}")
            }
            _ => mounts.iter().fold(arg, |a, (from, to)| {
                a.replace(from, &format!("{}/", to.display()))
            }),
        };
        args.push(arg);
    }
    let probe = probe.ok_or_else(|| Error::Invalid(format!("{name}: no --probe-listen")))?;
    let metrics = metrics.unwrap_or(probe);

    let log = pod_dir.join("log");
    let out = std::fs::File::create(&log).map_err(io_ctx("creating the pod's log"))?;
    let err = out.try_clone().map_err(io_ctx("sharing the pod's log"))?;
    let mut cmd = tokio::process::Command::new(&binary);
    cmd.args(&args)
        .env_clear()
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true);
    for (key, value) in container_env(container, &name)? {
        cmd.env(key, value);
    }
    if let Ok(filter) = std::env::var("RUST_LOG") {
        cmd.env("RUST_LOG", filter);
    }
    let child = cmd
        .spawn()
        .map_err(io_ctx(format!("starting {}", binary.display())))?;
    Ok(Pod {
        name,
        probe,
        metrics,
        https,
        child,
        log,
    })
}

/// The container's environment as the kubelet sets it: plain values, and the downward API
/// fields the chart uses (the pod's name and namespace).
fn container_env(container: &Value, deployment: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = var
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let value = if let Some(v) = var.get("value").and_then(Value::as_str) {
            v.to_owned()
        } else {
            match var
                .pointer("/valueFrom/fieldRef/fieldPath")
                .and_then(Value::as_str)
            {
                Some("metadata.name") => format!("{deployment}-0"),
                Some("metadata.namespace") => RELEASE_NS.to_owned(),
                other => {
                    return Err(Error::Invalid(format!(
                        "{deployment}: env {key} from {other:?} is not simulated"
                    )));
                }
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// The binary a container runs: the last segment of its image repository (the images are
/// named after the binaries), built next to this test (`cargo test --workspace` builds the
/// bins of every package with integration tests).
fn binary_of(container: &Value) -> Result<PathBuf> {
    let image = container.get("image").and_then(Value::as_str).unwrap_or_default();
    let repository = image.rsplit_once(':').map_or(image, |(r, _)| r);
    let name = repository.rsplit('/').next().unwrap_or_default();
    let exe = std::env::current_exe().map_err(io_ctx("locating the running binary"))?;
    // A test runs from target/<profile>/deps, a binary (the demo) from target/<profile>.
    let candidates: Vec<PathBuf> = exe.ancestors().skip(1).take(2).map(|d| d.join(name)).collect();
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        Error::Invalid(format!(
            "no binary {name} (image {image}) in {candidates:?}: build it with `cargo build --workspace --bins`"
        ))
    })
}

/// A loopback port free now (the OS picks it; it is released for the process to bind).
fn free_loopback_port() -> Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(io_ctx("finding a free loopback port"))
}
