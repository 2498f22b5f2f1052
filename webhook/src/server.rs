//! Serving: the HTTPS accept loop (tokio-rustls, then hyper HTTP/1.1 or HTTP/2 as ALPN chose)
//! within the connection limits, with graceful shutdown; and the plain-HTTP probe and metrics
//! listeners.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::conns::{Admitted, Registry, Wait};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::tls::ServerTls;
use crate::tracked::{TrackedIo, TrackedService};

/// In-flight requests get this long to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection closed gracefully (idle: HTTP/2 GOAWAY) is dropped after this at the latest.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Largest HTTP/1.1 read buffer, hence largest request head (hyper's default is ~400 KiB; the
/// API server's heads are under 1 KiB). HTTP/2 header lists keep hyper's 16 KiB limit.
const H1_MAX_BUF: usize = 16 * 1024;

/// The HTTP/1.1 and HTTP/2 connection settings.
struct Protocols {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl Protocols {
    fn new() -> Self {
        let mut h1 = http1::Builder::new();
        // Head and idle deadlines are kept by the connection's watcher (see `watch`): hyper's own
        // header timeout also runs while a keep-alive connection waits for its next request.
        h1.timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(H1_MAX_BUF);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new());
        Self { h1, h2 }
    }
}

/// Serves `router` over TLS on `listener` within `limits` until `shutdown`; then stops
/// accepting, lets in-flight requests finish and closes idle keep-alive connections.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    router: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let registry = Registry::new(limits.max_connections, metrics.clone());
    let protocols = Arc::new(Protocols::new());
    let limits = Arc::new(limits);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(admitted) = registry.admit(peer.ip().to_canonical()) else {
            continue; // dropping the socket refuses it
        };
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            tcp,
            peer,
            admitted,
            tls: tls.clone(),
            router: router.clone(),
            protocols: protocols.clone(),
            limits: limits.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(conn.serve());
    }
    drop(listener);
    tracing::info!(
        connections = registry.len(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(DRAIN_TIMEOUT, registry.wait_empty())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
        registry.close_all();
    }
}

/// One accepted connection and what it is served with.
struct Connection {
    tcp: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    tls: Arc<ServerTls>,
    router: Router,
    protocols: Arc<Protocols>,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Connection {
    async fn serve(self) {
        let Connection {
            tcp,
            peer,
            admitted,
            tls,
            router,
            protocols,
            limits,
            metrics,
            shutdown,
        } = self;
        let handshake = tls.acceptor().accept(tcp);
        let stream = tokio::select! {
            _ = admitted.close.cancelled() => return,
            _ = shutdown.cancelled() => return, // no request yet: nothing to drain
            done = tokio::time::timeout(limits.header_read_timeout, handshake) => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    metrics.count_closed("handshake_failed");
                    return tracing::debug!(%peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    metrics.count_closed("handshake_timeout");
                    return tracing::debug!(%peer, "TLS handshake timed out");
                }
            },
        };
        let activity = admitted.activity.clone();
        let service = TrackedService::new(TowerToHyperService::new(router), activity.clone());
        let watch = Watch {
            admitted: &admitted,
            limits: &limits,
            metrics: &metrics,
            shutdown: &shutdown,
            peer,
        };
        // Without ALPN a TLS client speaks HTTP/1.1 (RFC 9113 §3.2: h2 over TLS needs ALPN).
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            let io = TokioIo::new(TrackedIo::new(stream, activity, false));
            let conn = protocols.h2.serve_connection(io, service);
            watch.run(conn, |c| c.graceful_shutdown()).await;
        } else {
            activity.expect_head();
            let io = TokioIo::new(TrackedIo::new(stream, activity, true));
            let conn = protocols.h1.serve_connection(io, service);
            watch.run(conn, |c| c.graceful_shutdown()).await;
        }
    }
}

/// Drives a connection while keeping its deadlines: a request head that does not complete in
/// time closes it at once; an idle connection, shutdown or the end of the drain close it.
struct Watch<'a> {
    admitted: &'a Admitted,
    limits: &'a Limits,
    metrics: &'a Metrics,
    shutdown: &'a CancellationToken,
    peer: SocketAddr,
}

impl Watch<'_> {
    async fn run<C>(self, conn: C, graceful: fn(Pin<&mut C>))
    where
        C: Future<Output = Result<(), hyper::Error>>,
    {
        tokio::pin!(conn);
        let activity = &self.admitted.activity;
        // Once closing: the instant after which the connection is dropped (None: at the drain's end).
        let mut closing: Option<Option<Instant>> = None;
        loop {
            let deadline = match closing {
                Some(by) => by,
                None => match activity.next_wait(self.limits.header_read_timeout, self.limits.idle_timeout) {
                    Wait::Busy => None,
                    Wait::HeadBy(at) => {
                        if at <= std::time::Instant::now() {
                            self.metrics.count_closed("header_timeout");
                            return tracing::debug!(peer = %self.peer, "request head not received in time");
                        }
                        Some(Instant::from_std(at))
                    }
                    Wait::IdleBy(at) => {
                        if at <= std::time::Instant::now() {
                            self.metrics.count_closed("idle");
                            graceful(conn.as_mut());
                            closing = Some(Some(Instant::now() + CLOSE_GRACE));
                            continue;
                        }
                        Some(Instant::from_std(at))
                    }
                },
            };
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.admitted.close.cancelled() => return,
                _ = self.shutdown.cancelled(), if closing.is_none() => {
                    graceful(conn.as_mut());
                    closing = Some(None);
                }
                _ = activity.changed(), if closing.is_none() => {}
                _ = sleep_until(deadline) => {
                    if closing.is_some() {
                        return;
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Serves a plain-HTTP router (probes, metrics) until `shutdown`.
pub async fn serve_plain(listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "plain-HTTP server failed");
    }
}
