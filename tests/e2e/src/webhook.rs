//! The webhook in-process on loopback HTTPS with a freshly generated certificate.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::chart_config::{RELEASE_NS, SERVICE};
use crate::error::{Error, Result, io_ctx};
use crate::identity::controller_username;

/// A running webhook and the CA its serving certificate chains to.
pub struct Webhook {
    pub https_addr: SocketAddr,
    pub probe_addr: SocketAddr,
    pub ca_pem: String,
    token: CancellationToken,
    running: volops_webhook::Running,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("https_addr", &self.https_addr)
            .field("probe_addr", &self.probe_addr)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Generates a certificate for the chart's Service names and 127.0.0.1 (written to
    /// `dir`), then starts the webhook on 127.0.0.1:0 with its reflectors on `client`.
    pub async fn start(client: kube::Client, dir: &Path) -> Result<Webhook> {
        let dns = [format!("{SERVICE}.{RELEASE_NS}.svc"), "localhost".to_owned()];
        let bundle = volops_certs::generate(&dns, &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1)?;
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, &bundle.cert_pem).map_err(io_ctx("writing tls.crt"))?;
        std::fs::write(&key, &bundle.key_pem).map_err(io_ctx("writing tls.key"))?;
        let mut config = volops_webhook::Config::new(cert, key);
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.probe_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        // As the chart starts it: the controller's user is known (--controller-username).
        config.options.controller_username = Some(controller_username().into());
        let token = CancellationToken::new();
        let running = volops_webhook::start(config, client, token.clone()).await?;
        Ok(Webhook {
            https_addr: running.https_addr,
            probe_addr: running.probe_addr,
            ca_pem: bundle.ca_cert_pem,
            token,
            running,
        })
    }

    /// `https://127.0.0.1:PORT` (for `clientConfig.url`).
    pub fn url(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    /// Waits until `/readyz` answers 200 (certificate loaded, caches synced).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_probe("/readyz", timeout, |_| true).await.map(drop)
    }

    /// Waits until the webhook's cache `cache` (e.g. "persistentvolumeclaims", "redis")
    /// holds at least `count` objects, read from `/metrics`.
    pub async fn wait_cache(&self, cache: &str, count: usize, timeout: Duration) -> Result<()> {
        let prefix = format!("volops_webhook_cache_objects{{cache=\"{cache}\"}} ");
        self.wait_probe("/metrics", timeout, |body| {
            body.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .is_some_and(|n| n >= count)
        })
        .await
        .map(drop)
    }

    /// The webhook's `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        probe_get(self.probe_addr, "/metrics").await
    }

    async fn wait_probe(&self, path: &str, timeout: Duration, want: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = probe_get(self.probe_addr, path).await;
            if let Ok(body) = &last
                && want(body)
            {
                return Ok(body.clone());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("webhook {path}"),
                    after: timeout,
                    last: match last {
                        Ok(b) | Err(Error::Invalid(b)) => b.chars().take(300).collect(),
                        Err(e) => e.to_string(),
                    },
                });
            }
            // The probe port has no watch; a short poll with a deadline.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops serving and waits for every task.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.running.wait().await;
    }
}

/// GET over plain HTTP/1.1; Ok(body) on 200, Err(Invalid(response)) otherwise.
pub(crate) async fn probe_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(io_ctx(format!("connecting to {addr}")))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(io_ctx("sending probe request"))?;
    let mut buf = String::new();
    tcp.read_to_string(&mut buf)
        .await
        .map_err(io_ctx("reading probe response"))?;
    if buf.starts_with("HTTP/1.1 200") {
        Ok(buf
            .split_once("\r\n\r\n")
            .map_or(buf.clone(), |(_, b)| b.to_owned()))
    } else {
        Err(Error::Invalid(buf))
    }
}
