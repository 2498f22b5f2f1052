//! Writes kubeconfigs kubectl and kube-rs can use: the admin's (bearer token), a user's (client
//! certificate) and a ServiceAccount's (a token file, as a pod mounts it).

use std::path::Path;

use base64::Engine;

use crate::SandboxError;

/// How a kubeconfig's user authenticates.
pub enum Credential<'a> {
    Token(&'a str),
    /// A file holding the token (kube-rs and kubectl re-read it, as with a projected token).
    TokenFile(&'a Path),
    Certificate {
        cert_pem: &'a str,
        key_pem: &'a str,
    },
}

pub fn render(url: &str, ca_pem: &str, user: &str, credential: &Credential<'_>) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let auth = match credential {
        Credential::Token(t) => format!("token: {}", serde_json::Value::from(*t)),
        Credential::TokenFile(p) => {
            format!("tokenFile: {}", serde_json::Value::from(p.display().to_string()))
        }
        Credential::Certificate { cert_pem, key_pem } => format!(
            "client-certificate-data: {}\n    client-key-data: {}",
            b64(cert_pem),
            b64(key_pem)
        ),
    };
    let user = serde_json::Value::from(user);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    {auth}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: {user}\n    namespace: default\ncurrent-context: sandbox\npreferences: {{}}\n",
        ca = b64(ca_pem)
    )
}

/// Writes `text` readable by the owner only (it holds credentials).
pub fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    use std::io::Write;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| SandboxError::Io(dir.display().to_string(), e))?;
    }
    let io = |e| SandboxError::Io(path.display().to_string(), e);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io)
}
