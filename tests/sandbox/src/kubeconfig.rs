//! Writes a kubeconfig kubectl and kube-rs can use.

use std::path::Path;

use base64::Engine;

use crate::SandboxError;

/// The bearer token written into kubeconfigs (any token is accepted).
pub const TOKEN: &str = "volops-sandbox-token";

pub fn render(url: &str, ca_pem: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: sandbox\n  user:\n    token: {TOKEN}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox\n    namespace: default\ncurrent-context: sandbox\npreferences: {{}}\n"
    )
}

pub fn write(path: &Path, url: &str, ca_pem: &str) -> Result<(), SandboxError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| SandboxError::Io(dir.display().to_string(), e))?;
    }
    std::fs::write(path, render(url, ca_pem)).map_err(|e| SandboxError::Io(path.display().to_string(), e))
}
