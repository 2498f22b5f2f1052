//! The HTTPS listener's limits over real TLS on 127.0.0.1 (issue 18, finding 7): request-head and
//! idle deadlines, the connection cap under a flood of idle connections, and the memory budget of
//! request bodies. Memory figures live in the benchmark (`volops-bench webhook-flood`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod https;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use https::*;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpSocket, TcpStream};

async fn metrics_text(running: &volops_webhook::Running) -> String {
    get_plain(running.metrics_addr, "/metrics").await.1
}

fn closed(reason: &str) -> String {
    format!(r#"volops_webhook_connections_closed_total{{reason="{reason}"}}"#)
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_after_the_header_read_timeout() {
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let mut config = config(&vol);
    config.limits.header_read_timeout = Duration::from_millis(300);
    let (running, token) = start_config(config).await;
    let addr = running.https_addr;

    let mut half = connect(addr, client_config(&[&b], b"http/1.1")).await.unwrap();
    write_raw(
        &mut half,
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl",
    )
    .await;
    let sent = Instant::now();
    let answer = read_until_closed(&mut half, Duration::from_secs(10)).await;
    assert_eq!(answer, Ok(Vec::new()), "a half-sent head was held for 10 s");
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "closed before the deadline"
    );
    // A connection that finished its handshake and sends nothing is closed the same way.
    let mut silent = connect(addr, client_config(&[&b], b"http/1.1")).await.unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(10))
            .await
            .is_ok()
    );
    // A TCP connection that never starts TLS too.
    let mut mute = TcpStream::connect(addr).await.unwrap();
    assert!(
        read_until_closed(&mut mute, Duration::from_secs(10))
            .await
            .is_ok()
    );

    // Between requests a keep-alive connection waits under the idle timeout, not the head's.
    let (mut sender, _conn) = h1(connect(addr, client_config(&[&b], b"http/1.1")).await.unwrap()).await;
    send_h1(&mut sender).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(send_h1(&mut sender).await["response"]["allowed"], true);

    let m = metrics_text(&running).await;
    assert_eq!(metric(&m, &closed("header_timeout")), 2.0, "{m}");
    assert_eq!(metric(&m, &closed("handshake_timeout")), 1.0, "{m}");
    token.cancel();
    running.wait().await;
}

#[tokio::test]
async fn idle_connections_are_closed_http2_with_a_goaway_and_http1() {
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let mut config = config(&vol);
    config.limits.idle_timeout = Duration::from_millis(500);
    let (running, token) = start_config(config).await;
    let addr = running.https_addr;

    let stream = connect(addr, client_config(&[&b], b"h2")).await.unwrap();
    let (mut h2, h2_conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    let h2_conn = tokio::spawn(h2_conn);
    let resp = h2.send_request(validate_request()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let (mut h1_sender, h1_conn) = h1(connect(addr, client_config(&[&b], b"http/1.1")).await.unwrap()).await;
    send_h1(&mut h1_sender).await;

    // Both end cleanly (GOAWAY for HTTP/2) instead of being held.
    let ended = tokio::time::timeout(Duration::from_secs(10), h2_conn).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    let ended = tokio::time::timeout(Duration::from_secs(10), h1_conn).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    let m = metrics_text(&running).await;
    assert_eq!(metric(&m, &closed("idle")), 2.0, "{m}");
    token.cancel();
    running.wait().await;
}

/// A TCP connection to `addr` from the loopback address `from` that never says anything.
async fn idle_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_reviews_still_succeed_while_idle_connections_flood_it() {
    const CAP: usize = 16;
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let mut config = config(&vol);
    config.limits.max_connections = CAP;
    let (running, token) = start_config(config).await;
    let addr = running.https_addr;
    let attacker = [127, 0, 0, 2];

    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(idle_from(attacker, addr).await);
    }
    // The flood goes on while the reviews run.
    let stop = tokio_util::sync::CancellationToken::new();
    let flooding = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut held = Vec::new();
            while !stop.is_cancelled() {
                held.push(idle_from(attacker, addr).await);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            held.len()
        }
    });
    for _ in 0..5 {
        assert_eq!(review_once(addr, &b).await["response"]["allowed"], true);
    }
    stop.cancel();
    let more = flooding.await.unwrap();

    // The cap held: all but the newest CAP connections were closed by the server (their reads
    // end), and no more than CAP are open.
    let reads = join_all(
        flood
            .iter_mut()
            .map(|s| read_until_closed(s, Duration::from_secs(3))),
    )
    .await;
    let closed_by_server = reads.iter().filter(|r| r.is_ok()).count();
    assert!(
        closed_by_server >= (200 + more).saturating_sub(CAP).min(200),
        "{closed_by_server} of the first 200 closed, {more} opened after them"
    );
    let m = metrics_text(&running).await;
    assert!(metric(&m, "volops_webhook_connections") <= CAP as f64, "{m}");
    assert!(
        metric(&m, &closed("evicted")) >= (200 + more - CAP) as f64,
        "{more} more: {m}"
    );
    assert_eq!(metric(&m, &closed("refused")), 0.0, "{m}");
    token.cancel();
    running.wait().await;
}

/// A request head announcing a `len`-byte review, sent without its body.
fn head_only(len: usize) -> Vec<u8> {
    format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn large_bodies_beyond_the_memory_budget_are_refused_with_503_without_being_buffered() {
    const MIB: usize = 1 << 20;
    let b = bundle();
    let vol = SecretVolume::new(&b);
    let mut config = config(&vol);
    config.limits.max_body_bytes = 4 * MIB;
    // Large bodies may take three quarters (9 MiB): two 4 MiB bodies in flight, not three.
    config.limits.body_memory_bytes = 12 * MIB;
    config.request_timeout = Duration::from_secs(30);
    let (running, token) = start_config(config).await;
    let addr = running.https_addr;
    let held = r#"volops_webhook_body_memory_bytes"#;

    // Two large reviews announced, their bodies not sent yet: they hold 8 MiB of the budget.
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut s = connect(addr, client_config(&[&b], b"http/1.1")).await.unwrap();
        write_raw(&mut s, &head_only(4 * MIB)).await;
        waiting.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&metrics_text(&running).await, held) != (8 * MIB) as f64 {
        assert!(
            Instant::now() < deadline,
            "the two announced bodies were not charged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Four more, sent in full at once: each is answered 503 with Retry-After, none is kept.
    let body = vec![b' '; 4 * MIB];
    let answers = join_all((0..4).map(|_| async {
        let mut s = connect(addr, client_config(&[&b], b"http/1.1")).await.unwrap();
        // `Connection: close`, so that the answer ends with the connection (a drained refusal
        // otherwise keeps it alive).
        let head = String::from_utf8(head_only(4 * MIB)).unwrap();
        let mut request = head
            .replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
            .into_bytes();
        request.extend_from_slice(&body);
        write_raw(&mut s, &request).await;
        read_until_closed(&mut s, Duration::from_secs(10)).await
    }))
    .await;
    for answer in &answers {
        let text = String::from_utf8_lossy(answer.as_ref().expect("answered and closed")).to_lowercase();
        assert!(text.starts_with("http/1.1 503"), "{text}");
        assert!(text.contains("\r\nretry-after: 1\r\n"), "{text}");
    }
    let m = metrics_text(&running).await;
    assert_eq!(metric(&m, held), (8 * MIB) as f64, "{m}");
    assert_eq!(
        metric(
            &m,
            r#"volops_webhook_admission_requests_refused_total{reason="body_memory"}"#
        ),
        4.0,
        "{m}"
    );
    // A review of a few KiB still finds room beside the two large ones.
    assert_eq!(review_once(addr, &b).await["response"]["allowed"], true);
    drop(waiting);
    token.cancel();
    running.wait().await;
}
