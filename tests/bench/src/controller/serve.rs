//! `serve-controller`: the controller under test as a child process, calling
//! `volops_controller::run` as controller/src/main.rs does. It announces the URL of its
//! /metrics once its probe server answers.

use std::{net::SocketAddr, num::NonZeroUsize, time::Duration};

use anyhow::{Context, Result, bail};
use volops_controller::{Config, PauseHandshake};

use crate::proc;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Online: PVCs of one request resizing at once (0 = all).
    #[arg(long, default_value_t = 0)]
    pub pvc_parallelism: usize,
    /// `kubedb` (the sandbox runs a KubeDB-like provisioner) or `self`.
    #[arg(long, default_value = "kubedb")]
    pub pause_handshake: String,
    /// The storage autoscaler's interval, in milliseconds (the `autoscaler` bench's).
    #[arg(long, default_value_t = 60_000)]
    pub autoscaler_interval_ms: u64,
}

/// A free local port for the probe server (the parent reads the URL from the ready line).
fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("no free local port")?;
    Ok(listener.local_addr()?)
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let pause_handshake = match args.pause_handshake.as_str() {
        "kubedb" => PauseHandshake::Kubedb,
        "self" => PauseHandshake::SelfPause,
        other => bail!("--pause-handshake {other}: want kubedb or self"),
    };
    let addr = free_port()?;
    let config = Config {
        pause_handshake,
        probe_listen: Some(addr),
        pvc_parallelism: NonZeroUsize::new(args.pvc_parallelism),
        autoscaler: volops_controller::autoscaler::AutoscalerConfig {
            interval: Duration::from_millis(args.autoscaler_interval_ms.max(1)),
            ..Default::default()
        },
        ..Config::default()
    };
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes client from KUBECONFIG")?;
    let mut run = tokio::spawn(volops_controller::run(client, config, terminated()));
    let http = reqwest::Client::new();
    let ready = format!("http://{addr}/readyz");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if run.is_finished() || tokio::time::Instant::now() > deadline {
            bail!("the controller's probe server did not answer on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proc::announce_ready(&serde_json::json!({"metrics_url": format!("http://{addr}/metrics")}));
    (&mut run).await.context("controller task")??;
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
