//! Certificate rotation under load: ten kubelet-style rotations (`..data` symlink swap) while
//! clients send reviews on keep-alive HTTPS connections. Zero failed requests, no connection
//! dropped, and every rotation is seen by a fresh handshake.

#![allow(clippy::unwrap_used)] // test code: helpers and threads outside #[test] fns

mod reliability_common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reliability_common::*;
use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

const ROTATIONS: usize = 10;
const CLIENTS: usize = 4;

/// What one client thread saw.
#[derive(Debug, Default)]
struct ClientReport {
    sent: u64,
    failed: Vec<String>,
    first_leaf: Option<CertificateDer<'static>>,
}

/// Sends reviews on one keep-alive connection until `stop`; a failure is recorded and the
/// connection replaced (so a failure cannot hide later ones).
fn client(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
    stop: Arc<AtomicBool>,
    total: Arc<AtomicU64>,
) -> ClientReport {
    let mut report = ClientReport::default();
    let bodies: Vec<(&str, Vec<u8>)> = [
        ("/validate", ops("RedisOpsRequest", "rd", "Online", "2Gi")),
        ("/mutate", ops("ZooKeeperOpsRequest", "zk", "Offline", "2Gi")),
    ]
    .into_iter()
    .map(|(p, o)| {
        let kind = o["kind"].as_str().unwrap().to_owned();
        let r = review("rot-uid", &kind, "CREATE", None, Some(o), None, false);
        (p, serde_json::to_vec(&r).unwrap())
    })
    .collect();
    let mut conn = H1::connect(addr, cfg.clone()).unwrap();
    report.first_leaf = conn.served_leaf();
    while !stop.load(Ordering::Relaxed) {
        let (path, body) = &bodies[(report.sent % 2) as usize];
        report.sent += 1;
        let outcome = conn.post(path, body).map_err(|e| e.to_string()).and_then(|r| {
            let v: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{} {e}", r.status))?;
            match (r.status, v["response"]["uid"].as_str(), r.close) {
                (200, Some("rot-uid"), false) => Ok(()),
                _ => Err(format!("{} close={} {v}", r.status, r.close)),
            }
        });
        if let Err(e) = outcome {
            report.failed.push(format!("request {}: {e}", report.sent));
            conn = H1::connect(addr, cfg.clone()).unwrap();
        }
        total.fetch_add(1, Ordering::Relaxed);
    }
    report
}

fn leaf(b: &volops_certs::Bundle) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(b.cert_pem.as_bytes()).unwrap()
}

async fn fresh_leaf(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Option<CertificateDer<'static>> {
    tokio::task::spawn_blocking(move || H1::connect(addr, cfg).ok().and_then(|c| c.served_leaf()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_rotations_under_keep_alive_load_fail_no_request() {
    let started = Instant::now();
    let ip = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
    // Each rotation brings a new CA too (volops-certs makes a CA per bundle); the clients trust
    // every CA, as a caBundle listing old and new does during a rotation.
    let bundles: Vec<_> = (0..=ROTATIONS)
        .map(|_| volops_certs::generate(&["localhost".to_owned()], &ip, 1).unwrap())
        .collect();
    let mut vol = SecretVolume::new(&bundles[0].cert_pem, &bundles[0].key_pem);
    let (running, token) = start_webhook(&vol).await;
    let addr = running.https_addr;
    let cas: Vec<&str> = bundles.iter().map(|b| b.ca_cert_pem.as_str()).collect();
    let cfg = client_config_many(&cas);

    let (stop, total) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (cfg, stop, total) = (cfg.clone(), stop.clone(), total.clone());
            std::thread::spawn(move || client(addr, cfg, stop, total))
        })
        .collect();

    let mut seen = 0;
    for (i, b) in bundles.iter().enumerate().skip(1) {
        // Load between rotations: at least 50 more requests on the open connections.
        let before = total.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        while total.load(Ordering::Relaxed) < before + 50 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        vol.publish(&b.cert_pem, &b.key_pem);
        let want = leaf(b);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if fresh_leaf(addr, cfg.clone()).await.as_ref() == Some(&want) {
                seen += 1;
                break;
            }
            assert!(Instant::now() < deadline, "rotation {i} not served within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Some load after the last rotation as well.
    let before = total.load(Ordering::Relaxed);
    while total.load(Ordering::Relaxed) < before + 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let reports: Vec<ClientReport> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let sent: u64 = reports.iter().map(|r| r.sent).sum();
    let failed: Vec<&String> = reports.iter().flat_map(|r| &r.failed).collect();
    println!(
        "rotation under load: {seen} rotations seen, {sent} requests on {CLIENTS} keep-alive connections, {} failed, {:.1}s",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(seen, ROTATIONS);
    assert!(failed.is_empty(), "{failed:#?}");
    // The connections opened before the first rotation carried the whole run.
    for r in &reports {
        assert_eq!(r.first_leaf.as_ref(), Some(&leaf(&bundles[0])));
        assert!(r.sent >= 50, "{r:?}");
    }
    token.cancel();
    running.wait().await;
}
