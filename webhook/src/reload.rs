//! Certificate reload: watch the directories of the cert and key, and of the client CA when set
//! (a Secret or ConfigMap volume swaps its `..data` symlink, which a watch on the file itself
//! misses), debounce, re-read the files and swap only a good pair or CA; a slow periodic
//! re-read catches anything the watch missed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::tls::{CertResolver, ServerTls, load_pair};

#[derive(Debug, thiserror::Error)]
#[error("watching {dir} for certificate changes: {source}")]
pub struct WatchError {
    dir: PathBuf,
    source: notify::Error,
}

/// How and what to reload.
#[derive(Clone, Debug)]
pub struct ReloadConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Quiet time after the last file event before re-reading.
    pub debounce: Duration,
    /// Re-read this often even without events.
    pub interval: Duration,
}

fn parent(p: &std::path::Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Re-reads the pair; swaps it in when it parses, matches, and differs from the current one.
pub fn reload_once(cfg: &ReloadConfig, resolver: &CertResolver) {
    match load_pair(&cfg.cert, &cfg.key) {
        Ok(key) => {
            if resolver.replace(key) {
                let not_after = resolver.expiry();
                tracing::info!(cert = %cfg.cert.display(), not_after, "serving certificate reloaded");
            }
        }
        Err(e) => tracing::error!(error = %e, "certificate reload refused; keeping the current certificate"),
    }
}

/// Re-reads the client CA (if any); swaps it in when it parses and differs from the current one.
pub fn reload_client_ca_once(tls: &ServerTls) {
    match tls.reload_client_ca() {
        Ok(true) => tracing::info!("client CA reloaded"),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "client CA reload refused; keeping the current one"),
    }
}

fn reload_all(cfg: &ReloadConfig, tls: &ServerTls) {
    reload_once(cfg, tls.resolver());
    reload_client_ca_once(tls);
}

/// Starts the watcher and the reload task; they stop when `shutdown` fires.
pub fn spawn(
    cfg: ReloadConfig,
    tls: Arc<ServerTls>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            // A full channel already means "reload pending".
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| WatchError {
        dir: parent(&cfg.cert),
        source,
    })?;
    let mut dirs = vec![parent(&cfg.cert), parent(&cfg.key)];
    dirs.extend(tls.client_ca_path().as_deref().map(parent));
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError {
                dir: dir.clone(),
                source,
            })?;
    }
    Ok(tokio::spawn(async move {
        let _watcher: RecommendedWatcher = watcher; // lives as long as the task
        let mut tick = tokio::time::interval(cfg.interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => reload_all(&cfg, &tls),
                Some(()) = rx.recv() => {
                    // Debounce: wait until events stop for `debounce`.
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            more = tokio::time::timeout(cfg.debounce, rx.recv()) => match more {
                                Ok(Some(())) => continue,
                                _ => break,
                            },
                        }
                    }
                    reload_all(&cfg, &tls);
                }
            }
        }
    }))
}
