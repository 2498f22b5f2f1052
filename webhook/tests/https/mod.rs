//! Test fixtures for the webhook served over real HTTPS on 127.0.0.1: generated certificates in a
//! Secret-like volume, the server started in-process, and TLS/HTTP clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use volops_certs::{Bundle, generate};
use volops_webhook::{Config, Running, start_with_caches};

use crate::common::{Review, World, install_provider, redis_ops};

pub fn bundle() -> Bundle {
    generate(&["localhost".to_owned()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).unwrap()
}

pub fn leaf_der(b: &Bundle) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(b.cert_pem.as_bytes()).unwrap()
}

/// A Secret volume as kubelet lays it out: `..<ts>/<files>`, `..data -> ..<ts>`,
/// `<file> -> ..data/<file>`.
pub struct SecretVolume {
    pub dir: tempfile::TempDir,
    generation: u32,
    files: Vec<&'static str>,
}

impl SecretVolume {
    /// `tls.crt` and `tls.key` of `b`.
    pub fn new(b: &Bundle) -> Self {
        Self::with(&[("tls.crt", &b.cert_pem), ("tls.key", &b.key_pem)])
    }

    pub fn with(files: &[(&'static str, &str)]) -> Self {
        let mut v = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
            files: files.iter().map(|(n, _)| *n).collect(),
        };
        v.publish_files(files);
        for f in &v.files {
            std::os::unix::fs::symlink(Path::new("..data").join(f), v.dir.path().join(f)).unwrap();
        }
        v
    }

    /// Writes a new timestamped dir and atomically re-points `..data` at it.
    pub fn publish(&mut self, cert: &str, key: &str) {
        self.publish_files(&[("tls.crt", cert), ("tls.key", key)]);
    }

    pub fn publish_files(&mut self, files: &[(&str, &str)]) {
        self.generation += 1;
        let ts = format!("..2026_11_21_06_00_{:02}.{}", self.generation, self.generation);
        let new = self.dir.path().join(&ts);
        std::fs::create_dir(&new).unwrap();
        for (name, text) in files {
            std::fs::write(new.join(name), text).unwrap();
        }
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&ts, &tmp).unwrap();
        let data = self.dir.path().join("..data");
        let old = std::fs::read_link(&data).ok();
        std::fs::rename(&tmp, &data).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
    pub fn cert(&self) -> PathBuf {
        self.path("tls.crt")
    }
    pub fn key(&self) -> PathBuf {
        self.path("tls.key")
    }
}

/// The webhook's configuration on loopback for the certificates in `vol`.
pub fn config(vol: &SecretVolume) -> Config {
    install_provider();
    let mut config = Config::new(vol.cert(), vol.key());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.probe_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.reload_debounce = Duration::from_millis(50);
    config
}

pub async fn start(vol: &SecretVolume) -> (Running, CancellationToken) {
    start_config(config(vol)).await
}

pub async fn start_config(config: Config) -> (Running, CancellationToken) {
    let token = CancellationToken::new();
    let running = start_with_caches(config, World::standard().caches(), token.clone())
        .await
        .unwrap();
    (running, token)
}

fn roots(cas: &[&Bundle]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.ca_cert_pem.as_bytes()).unwrap())
            .unwrap();
    }
    roots
}

/// A client trusting `cas`, speaking `alpn`, without a client certificate.
pub fn client_config(cas: &[&Bundle], alpn: &[u8]) -> Arc<ClientConfig> {
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots(cas))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

/// A client trusting `cas` that presents the leaf of `client` as its certificate.
pub fn client_config_with_cert(cas: &[&Bundle], client: &Bundle) -> Arc<ClientConfig> {
    let chain = vec![leaf_der(client)];
    let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).unwrap();
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots(cas))
        .with_client_auth_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

pub type Stream = tokio_rustls::client::TlsStream<TcpStream>;

pub async fn connect(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Result<Stream, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

pub fn served_leaf(s: &Stream) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

/// An HTTP/1.1 keep-alive connection; its driver task resolves when the connection ends.
pub async fn h1(
    stream: Stream,
) -> (
    http1::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    (sender, tokio::spawn(conn))
}

pub fn validate_body() -> Vec<u8> {
    serde_json::to_vec(&Review::create_redis_ops(redis_ops("rd", "2Gi")).to_json()).unwrap()
}

pub fn validate_request() -> http::Request<Full<Bytes>> {
    http::Request::post("/validate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(validate_body())))
        .unwrap()
}

/// One review on `sender`; asserts 200 and returns the AdmissionReview.
pub async fn send_h1(sender: &mut http1::SendRequest<Full<Bytes>>) -> Value {
    sender.ready().await.unwrap();
    let resp = sender.send_request(validate_request()).await.unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

/// A fresh HTTP/1.1 connection trusting `ca` and one review on it.
pub async fn review_once(addr: SocketAddr, ca: &Bundle) -> Value {
    let stream = connect(addr, client_config(&[ca], b"http/1.1")).await.unwrap();
    let (mut sender, _conn) = h1(stream).await;
    send_h1(&mut sender).await
}

/// Reads until the peer closes (Ok(bytes read)) or `within` passes (Err).
pub async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    within: Duration,
) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .map_err(|_| ())?;
    Ok(out)
}

/// Writes raw bytes (a request head, part of one) on a TLS stream.
pub async fn write_raw(s: &mut Stream, bytes: &[u8]) {
    s.write_all(bytes).await.unwrap();
    s.flush().await.unwrap();
}

/// The plain-HTTP GET of `path` on `addr`: (status, body).
pub async fn get_plain(addr: SocketAddr, path: &str) -> (u16, String) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A counter or gauge of the webhook's /metrics text, 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
