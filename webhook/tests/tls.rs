//! HTTPS on 127.0.0.1 with a client that trusts only the generated CA; certificate rotation the
//! way kubelet does it (`..data` symlink swap); graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use volops_certs::{Bundle, generate};
use volops_webhook::{Config, Running, start_with_caches};

fn bundle() -> Bundle {
    generate(&["localhost".to_owned()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)], 1).unwrap()
}

fn leaf_der(b: &Bundle) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(b.cert_pem.as_bytes()).unwrap()
}

/// A Secret volume as kubelet lays it out: `..<ts>/tls.*`, `..data -> ..<ts>`,
/// `tls.crt -> ..data/tls.crt`, `tls.key -> ..data/tls.key`.
struct SecretVolume {
    dir: tempfile::TempDir,
    generation: u32,
}

impl SecretVolume {
    fn new(b: &Bundle) -> Self {
        let mut v = Self {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        };
        v.publish(&b.cert_pem, &b.key_pem);
        for f in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(f), v.dir.path().join(f)).unwrap();
        }
        v
    }

    /// Writes a new timestamped dir and atomically re-points `..data` at it.
    fn publish(&mut self, cert: &str, key: &str) {
        self.generation += 1;
        let ts = format!("..2026_11_21_06_00_{:02}.{}", self.generation, self.generation);
        let new = self.dir.path().join(&ts);
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("tls.crt"), cert).unwrap();
        std::fs::write(new.join("tls.key"), key).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&ts, &tmp).unwrap();
        let data = self.dir.path().join("..data");
        let old = std::fs::read_link(&data).ok();
        std::fs::rename(&tmp, &data).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
}

async fn start(vol: &SecretVolume) -> (Running, CancellationToken) {
    install_provider();
    let mut config = Config::new(vol.cert(), vol.key());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.probe_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.reload_debounce = Duration::from_millis(50);
    let token = CancellationToken::new();
    let running = start_with_caches(config, World::standard().caches(), token.clone())
        .await
        .unwrap();
    (running, token)
}

fn client_config(cas: &[&Bundle], alpn: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(CertificateDer::from_pem_slice(ca.ca_cert_pem.as_bytes()).unwrap())
            .unwrap();
    }
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(cfg)
}

type Stream = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Result<Stream, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

fn served_leaf(s: &Stream) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

/// An HTTP/1.1 keep-alive connection.
async fn h1(stream: Stream) -> http1::SendRequest<Full<Bytes>> {
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    sender
}

fn validate_request() -> http::Request<Full<Bytes>> {
    let body = serde_json::to_vec(&Review::create_redis_ops(redis_ops("rd", "2Gi")).to_json()).unwrap();
    http::Request::post("/validate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn send_h1(sender: &mut http1::SendRequest<Full<Bytes>>) -> Value {
    sender.ready().await.unwrap();
    let resp = sender.send_request(validate_request()).await.unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn https_with_only_the_generated_ca_h1_and_h2() {
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let (running, token) = start(&vol).await;

    let stream = connect(running.https_addr, client_config(&[&b], b"http/1.1"))
        .await
        .unwrap();
    assert_eq!(served_leaf(&stream), leaf_der(&b));
    let mut sender = h1(stream).await;
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let out = send_h1(&mut sender).await;
        latencies.push(t.elapsed());
        assert_eq!(out["response"]["allowed"], true);
    }
    latencies.sort();
    println!(
        "HTTPS h1 keep-alive /validate round trip (debug build): p50 {:?}, p99 {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100]
    );

    let stream = connect(running.https_addr, client_config(&[&b], b"h2"))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(validate_request()).await.unwrap();
    assert_eq!(resp.status(), 200);

    // The probe listener is plain HTTP and ready: certificate loaded, caches synced.
    let tcp = TcpStream::connect(running.probe_addr).await.unwrap();
    let (mut probe, conn) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/readyz")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(probe.send_request(req).await.unwrap().status(), 200);

    // A client that trusts another CA refuses the server.
    let other = bundle();
    assert!(
        connect(running.https_addr, client_config(&[&other], b"http/1.1"))
            .await
            .is_err()
    );

    // TLS 1.2 is accepted too.
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(b.ca_cert_pem.as_bytes()).unwrap())
        .unwrap();
    let tls12 = ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = connect(running.https_addr, Arc::new(tls12)).await.unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    token.cancel();
    running.wait().await;
}

#[tokio::test]
async fn rotation_by_symlink_swap_serves_the_new_cert_and_keeps_open_connections() {
    let (old, new) = (bundle(), bundle());
    let mut vol = SecretVolume::new(&old);
    let (running, token) = start(&vol).await;
    let trust = client_config(&[&old, &new], b"http/1.1");

    let stream = connect(running.https_addr, trust.clone()).await.unwrap();
    assert_eq!(served_leaf(&stream), leaf_der(&old));
    let mut kept = h1(stream).await;
    send_h1(&mut kept).await;

    vol.publish(&new.cert_pem, &new.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = connect(running.https_addr, trust.clone()).await.unwrap();
        if served_leaf(&s) == leaf_der(&new) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not served within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection opened before the swap still works.
    assert_eq!(send_h1(&mut kept).await["response"]["allowed"], true);

    token.cancel();
    running.wait().await;
}

#[test]
fn a_bad_pair_is_refused_and_the_current_certificate_kept() {
    use volops_webhook::reload::{ReloadConfig, reload_once};
    use volops_webhook::tls::{CertResolver, TlsError, load_pair};
    install_provider();
    let (a, b) = (bundle(), bundle());
    let mut vol = SecretVolume::new(&a);
    let cfg = ReloadConfig {
        cert: vol.cert(),
        key: vol.key(),
        debounce: Duration::ZERO,
        interval: Duration::from_secs(60),
    };
    let resolver = CertResolver::new(load_pair(&vol.cert(), &vol.key()).unwrap());

    vol.publish(&b.cert_pem, &a.key_pem);
    assert!(matches!(
        load_pair(&vol.cert(), &vol.key()),
        Err(TlsError::Pair { .. })
    ));
    reload_once(&cfg, &resolver);
    assert_eq!(resolver.current().cert[0], leaf_der(&a));

    vol.publish("not a certificate", &b.key_pem);
    assert!(matches!(
        load_pair(&vol.cert(), &vol.key()),
        Err(TlsError::NoCert { .. })
    ));
    reload_once(&cfg, &resolver);
    assert_eq!(resolver.current().cert[0], leaf_der(&a));

    vol.publish(&b.cert_pem, &b.key_pem);
    reload_once(&cfg, &resolver);
    assert_eq!(resolver.current().cert[0], leaf_der(&b));
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections_and_stops_accepting() {
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let (running, token) = start(&vol).await;
    let addr = running.https_addr;
    let stream = connect(addr, client_config(&[&b], b"http/1.1")).await.unwrap();
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    let conn = tokio::spawn(conn);
    send_h1(&mut sender).await;

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), running.wait())
        .await
        .expect("server stops");
    // The idle keep-alive connection was closed by the server, and nothing listens any more.
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("idle connection closed")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}
