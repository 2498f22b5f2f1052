//! Writing a bundle to disk as ca.crt, tls.crt, tls.key.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::{Bundle, CertError};

/// Writes `ca.crt`, `tls.crt` and `tls.key` (mode 0600) into `dir`, creating it if needed.
/// Refuses to overwrite existing files unless `force`.
pub fn write_bundle(bundle: &Bundle, dir: &Path, force: bool) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let files = [
        ("ca.crt", &bundle.ca_cert_pem, 0o644),
        ("tls.crt", &bundle.cert_pem, 0o644),
        ("tls.key", &bundle.key_pem, 0o600),
    ];
    if !force {
        // Check all first so a refusal leaves the directory untouched.
        for (name, _, _) in &files {
            let path = dir.join(name);
            if path.exists() {
                return Err(CertError::Exists {
                    path: path.display().to_string(),
                });
            }
        }
    }
    for (name, text, mode) in files {
        write_file(&dir.join(name), text, mode)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), CertError> {
    let io_err = |source| CertError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(mode);
        let mut file = opts.open(path).map_err(io_err)?;
        // An existing file keeps its old mode on open; set it explicitly (the key must be 0600).
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io_err)?;
        file.write_all(text.as_bytes()).map_err(io_err)?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        let mut file = opts.open(path).map_err(io_err)?;
        file.write_all(text.as_bytes()).map_err(io_err)
    }
}
