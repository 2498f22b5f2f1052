//! The webhook in a scale run: its sync, then a closed loop of the admission mix.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{Cluster, Measured, arg};
use crate::load::{self, Target};
use crate::proc::{Child, Memory};
use crate::webhook::{Mix, mix, populate::Counts, probe};

const USER: &str = "volops-webhook";
const CONNECTIONS: usize = 16;

/// A serving certificate for localhost, written to a temp dir.
struct Certs {
    dir: tempfile::TempDir,
    ca_pem: String,
}

fn certs() -> Result<Certs> {
    let dir = tempfile::tempdir()?;
    let bundle = volops_certs::generate(&["localhost".into()], &[[127, 0, 0, 1].into()], 1)?;
    std::fs::write(dir.path().join("tls.crt"), &bundle.cert_pem)?;
    std::fs::write(dir.path().join("tls.key"), &bundle.key_pem)?;
    Ok(Certs {
        dir,
        ca_pem: bundle.ca_cert_pem,
    })
}

async fn spawn(cluster: &Cluster, certs: &Certs) -> Result<Child> {
    let args: Vec<String> = vec![
        "serve-webhook".into(),
        "--handler".into(),
        "webhook".into(),
        "--tls-cert".into(),
        arg(&certs.dir.path().join("tls.crt")),
        "--tls-key".into(),
        arg(&certs.dir.path().join("tls.key")),
    ];
    Child::spawn(&args, &cluster.kubeconfig(USER)?, &[], Duration::from_secs(600)).await
}

/// The webhook synced on the cluster as it is now (empty): its resident memory.
pub async fn empty(cluster: &Cluster) -> Result<Memory> {
    let certs = certs()?;
    let child = spawn(cluster, &certs).await?;
    let probes: SocketAddr = child.info_str("probe_addr")?.parse()?;
    probe::wait_synced(probes, &Counts::default(), Duration::from_secs(60)).await?;
    let memory = child.memory()?;
    child.stop(Duration::from_secs(20)).await?;
    Ok(memory)
}

/// Start to synced on the populated cluster, then the admission mix for `load_seconds`.
pub async fn measure(cluster: &Cluster, empty: Memory, load_seconds: f64) -> Result<Measured> {
    let certs = certs()?;
    let before = cluster.requests_of(USER);
    let started = Instant::now();
    let child = spawn(cluster, &certs).await?;
    let probes: SocketAddr = child.info_str("probe_addr")?.parse()?;
    probe::wait_synced(probes, &cluster.counts, Duration::from_secs(600)).await?;
    let ready = started.elapsed();
    let api_requests = cluster.requests_of(USER) - before;
    let synced = child.memory()?;
    let target = Target {
        addr: child.info_str("https_addr")?.parse()?,
        server_name: "localhost".try_into()?,
        tls: load::client_config(&certs.ca_pem)?,
    };
    let mix = Arc::new(Mix {
        reviews: Arc::new(mix::build(2000, cluster.namespaces, 9)),
        strict: true,
    });
    let out = load::closed_loop(
        &target,
        mix,
        CONNECTIONS,
        Duration::from_millis(200),
        Duration::from_secs_f64(load_seconds),
    )
    .await?;
    if out.errors > 0 {
        bail!(
            "{} admission errors under load: {:?}",
            out.errors,
            out.first_errors
        );
    }
    let loaded = child.memory()?;
    child.stop(Duration::from_secs(20)).await?;
    let c: Counts = cluster.counts;
    Ok(Measured {
        ready,
        empty,
        synced,
        loaded,
        // PVCs, databases, ops requests, and each namespace with its quota.
        cached_objects: c.pvcs + c.databases + c.ops_requests + 2 * c.namespaces,
        api_requests,
    })
}
