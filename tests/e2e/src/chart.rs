//! The chart as deployed: `charts/volops` rendered by the real Helm engine
//! (`tests/chart/render.py`, PyPI's helm-python-sdk), read back as objects. The harness applies
//! its RBAC, certificate Secret and webhook configurations, and starts the webhook and the
//! controller with the arguments of its Deployments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::apply;
use crate::error::{Error, Result, io_ctx};

/// The release every test installs (`helm install volops charts/volops -n volops-system`).
pub const RELEASE: &str = "volops";

/// One render of the chart: its files (`controller-rbac.yaml`, `crds/...`) and their objects.
#[derive(Debug)]
pub struct RenderedChart {
    files: BTreeMap<String, Vec<DynamicObject>>,
}

/// The webhook's serving certificate as the chart generated it (its Secret).
#[derive(Clone, Debug)]
pub struct ChartTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl RenderedChart {
    /// Renders `charts/volops` with `--set` pairs (strings with `--set-string`).
    pub fn render(sets: &[(&str, &str)], set_strings: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(io_ctx("temporary directory"))?;
        let root = crate::repo_root();
        let mut cmd = Command::new(python());
        cmd.current_dir(&root)
            .arg(root.join("tests/chart/render.py"))
            .arg("--out")
            .arg(dir.path())
            .arg("--skip-tests");
        for (k, v) in sets {
            cmd.args(["--set", &format!("{k}={v}")]);
        }
        for (k, v) in set_strings {
            cmd.args(["--set-string", &format!("{k}={v}")]);
        }
        let output = cmd.output().map_err(io_ctx("running tests/chart/render.py"))?;
        if !output.status.success() {
            return Err(Error::Invalid(format!(
                "rendering the chart failed (pip install -r tests/chart/requirements.txt?): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let mut files = BTreeMap::new();
        for path in yaml_files(dir.path())? {
            let name = path
                .strip_prefix(dir.path())
                .map_err(|e| Error::Invalid(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            files.insert(name, apply::read_documents(&path)?);
        }
        Ok(RenderedChart { files })
    }

    /// The objects of one rendered file (`controller-rbac.yaml`, `crds/x.yaml`); none if the
    /// file rendered nothing.
    pub fn file(&self, name: &str) -> &[DynamicObject] {
        self.files.get(name).map_or(&[], Vec::as_slice)
    }

    /// The objects of every file under `crds/`.
    pub fn crds(&self) -> Vec<DynamicObject> {
        self.files
            .iter()
            .filter(|(k, _)| k.starts_with("crds/"))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect()
    }

    /// Every object of a kind, in file order.
    pub fn of_kind(&self, kind: &str) -> Vec<&DynamicObject> {
        self.files
            .values()
            .flatten()
            .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == kind))
            .collect()
    }

    /// The (only) container of the Deployment rendered into `file`, as JSON (`args`, `env`, ...).
    pub fn container(&self, file: &str) -> Result<&Value> {
        self.file(file)
            .iter()
            .find(|o| o.types.as_ref().is_some_and(|t| t.kind == "Deployment"))
            .and_then(|d| d.data.pointer("/spec/template/spec/containers/0"))
            .ok_or_else(|| Error::Invalid(format!("no Deployment container in {file}")))
    }

    /// The container's arguments.
    pub fn args(&self, file: &str) -> Result<Vec<String>> {
        Ok(self
            .container(file)?
            .get("args")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default())
    }

    /// The webhook's serving certificate, key and CA from the chart's generated Secret.
    pub fn webhook_tls(&self) -> Result<ChartTls> {
        let secret = self
            .file("webhook-tls-secret.yaml")
            .first()
            .ok_or_else(|| Error::Invalid("the chart rendered no webhook-tls-secret.yaml".into()))?;
        let field = |key: &str| -> Result<String> {
            let b64 = secret
                .data
                .get("data")
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Invalid(format!("the TLS Secret has no {key}")))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| Error::Invalid(format!("{key}: {e}")))?;
            String::from_utf8(bytes).map_err(|e| Error::Invalid(format!("{key}: {e}")))
        };
        Ok(ChartTls {
            ca_pem: field("ca.crt")?,
            cert_pem: field("tls.crt")?,
            key_pem: field("tls.key")?,
        })
    }
}

/// The chart with its default values, rendered once per process (a render takes ~0.6 s; its
/// generated certificate is valid for a year).
pub fn default_render() -> Result<Arc<RenderedChart>> {
    static RENDERED: OnceLock<std::result::Result<Arc<RenderedChart>, String>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            RenderedChart::render(&[], &[])
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(Error::Invalid)
}

/// `$PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io_ctx(format!("listing {}", d.display())))? {
            let path = entry.map_err(io_ctx("reading a directory entry"))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "yaml") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
