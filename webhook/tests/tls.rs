//! HTTPS on 127.0.0.1 with a client that trusts only the generated CA; certificate rotation the
//! way kubelet does it (`..data` symlink swap); client certificates (`--client-ca`) and their
//! rotation; graceful shutdown; the metrics listener apart from the probes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;
mod https;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use https::*;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;

#[tokio::test]
async fn https_with_only_the_generated_ca_h1_and_h2() {
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let (running, token) = start(&vol).await;

    let stream = connect(running.https_addr, client_config(&[&b], b"http/1.1"))
        .await
        .unwrap();
    assert_eq!(served_leaf(&stream), leaf_der(&b));
    let (mut sender, _conn) = h1(stream).await;
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
    let (mut kept, _conn) = h1(stream).await;
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

/// notAfter of a bundle's leaf, read back from its PEM (Unix seconds).
fn bundle_not_after(b: &volops_certs::Bundle) -> f64 {
    let der = leaf_der(b);
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    cert.validity().not_after.timestamp() as f64
}

#[tokio::test]
async fn certificate_expiry_metric_follows_the_served_certificate() {
    const SERIES: &str = "volops_webhook_certificate_expiry_timestamp_seconds";
    let old = bundle();
    let new = volops_certs::generate(
        &["localhost".to_owned()],
        &[std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)],
        30,
    )
    .unwrap();
    let mut vol = SecretVolume::new(&old);
    let (running, token) = start(&vol).await;
    let (_, text) = get_plain(running.metrics_addr, "/metrics").await;
    assert!(text.contains(&format!("# TYPE {SERIES} gauge")), "{text}");
    assert_eq!(metric(&text, SERIES), bundle_not_after(&old), "{text}");

    vol.publish(&new.cert_pem, &new.key_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = get_plain(running.metrics_addr, "/metrics").await;
        if metric(&text, SERIES) == bundle_not_after(&new) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expiry not updated within 10 s: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 29 more days of validity, give or take the seconds between the two generations.
    let gained = bundle_not_after(&new) - bundle_not_after(&old);
    assert!((gained - 29.0 * 86400.0).abs() < 60.0, "{gained}");

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

    assert_eq!(resolver.expiry() as f64, bundle_not_after(&a));

    vol.publish(&b.cert_pem, &b.key_pem);
    reload_once(&cfg, &resolver);
    assert_eq!(resolver.current().cert[0], leaf_der(&b));
    assert_eq!(resolver.expiry() as f64, bundle_not_after(&b));
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

/// The API server's client certificate: a leaf signed by a CA of its own (`--client-ca`).
fn client_bundle() -> volops_certs::Bundle {
    volops_certs::generate(&["kube-apiserver-webhook-client".to_owned()], &[], 1).unwrap()
}

async fn start_with_client_ca(
    vol: &SecretVolume,
    ca_vol: &SecretVolume,
) -> (volops_webhook::Running, tokio_util::sync::CancellationToken) {
    let mut config = config(vol);
    config.client_ca = Some(ca_vol.path("ca.crt"));
    start_config(config).await
}

/// What a handshake and one review over it end in: Ok(allowed) or Err(the client's error).
async fn review_with(addr: std::net::SocketAddr, cfg: Arc<ClientConfig>) -> Result<bool, String> {
    let stream = connect(addr, cfg).await.map_err(|e| e.to_string())?;
    // TLS 1.3: the server checks the client certificate after the client's handshake ends, so
    // a refusal arrives as an alert on the first read.
    let (mut sender, _conn) = h1(stream).await;
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(validate_request())
        .await
        .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let review: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(review["response"]["allowed"] == true)
}

#[tokio::test]
async fn client_ca_refuses_no_certificate_and_a_wrong_ca_and_reviews_with_the_right_one() {
    let server = bundle();
    let (apiserver, stranger) = (client_bundle(), client_bundle());
    let vol = SecretVolume::new(&server);
    let ca_vol = SecretVolume::with(&[("ca.crt", &apiserver.ca_cert_pem)]);
    let (running, token) = start_with_client_ca(&vol, &ca_vol).await;
    let addr = running.https_addr;

    let none = review_with(addr, client_config(&[&server], b"http/1.1")).await;
    assert!(
        none.as_ref().is_err_and(|e| e.contains("CertificateRequired")),
        "{none:?}"
    );
    // Both CAs carry the same name, so the signature check is what refuses (alert DecryptError).
    let wrong = review_with(addr, client_config_with_cert(&[&server], &stranger)).await;
    assert!(
        wrong.as_ref().is_err_and(|e| e.contains("AlertReceived")),
        "{wrong:?}"
    );
    assert_eq!(
        review_with(addr, client_config_with_cert(&[&server], &apiserver)).await,
        Ok(true)
    );

    let (_, metrics) = get_plain(running.metrics_addr, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            r#"volops_webhook_connections_closed_total{reason="handshake_failed"}"#
        ),
        2.0,
        "{metrics}"
    );
    token.cancel();
    running.wait().await;
}

#[tokio::test]
async fn client_ca_rotation_accepts_the_new_ca_and_keeps_open_connections() {
    let server = bundle();
    let (old, new) = (client_bundle(), client_bundle());
    let vol = SecretVolume::new(&server);
    let mut ca_vol = SecretVolume::with(&[("ca.crt", &old.ca_cert_pem)]);
    let (running, token) = start_with_client_ca(&vol, &ca_vol).await;
    let addr = running.https_addr;
    let stream = connect(addr, client_config_with_cert(&[&server], &old))
        .await
        .unwrap();
    let (mut kept, _conn) = h1(stream).await;
    send_h1(&mut kept).await;

    // A bad file is refused and the current CA kept.
    ca_vol.publish_files(&[("ca.crt", "not a certificate")]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        review_with(addr, client_config_with_cert(&[&server], &old)).await,
        Ok(true)
    );

    ca_vol.publish_files(&[("ca.crt", &new.ca_cert_pem)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while review_with(addr, client_config_with_cert(&[&server], &new)).await != Ok(true) {
        assert!(
            Instant::now() < deadline,
            "new client CA not in force within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        review_with(addr, client_config_with_cert(&[&server], &old))
            .await
            .is_err()
    );
    // The connection opened under the old CA is not cut.
    assert_eq!(send_h1(&mut kept).await["response"]["allowed"], true);
    token.cancel();
    running.wait().await;
}

#[tokio::test]
async fn metrics_listen_serves_metrics_apart_from_the_probes() {
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let mut config = config(&vol);
    config.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (running, token) = start_config(config).await;
    assert_ne!(running.metrics_addr, running.probe_addr);
    review_once(running.https_addr, &b).await;
    let (status, text) = get_plain(running.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("volops_webhook_admission_requests_total"), "{text}");
    assert!(text.contains("# TYPE volops_webhook_connections gauge"), "{text}");
    assert_eq!(get_plain(running.metrics_addr, "/readyz").await.0, 404);
    assert_eq!(get_plain(running.probe_addr, "/metrics").await.0, 404);
    assert_eq!(get_plain(running.probe_addr, "/readyz").await.0, 200);
    token.cancel();
    running.wait().await;
}
