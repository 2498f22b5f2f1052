//! A small HTTP/1.1-over-TLS load client: keep-alive connections (tokio-rustls + hyper's
//! client connection) trusting only a given CA, driven closed-loop (each connection sends its
//! next request when the last one is answered) or open-loop on a fixed schedule, with latency
//! then measured from the scheduled send time (no coordinated omission).

pub mod pace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

/// One request longer than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Error messages kept for the report.
const KEEP_ERRORS: usize = 5;

/// What the load sends and how an answer is judged.
pub trait Requests: Send + Sync + 'static {
    fn count(&self) -> usize;
    /// Path and body of request `i` (`i < count()`).
    fn request(&self, i: usize) -> (&str, Bytes);
    /// Judges the answer to request `i`.
    fn check(&self, i: usize, status: u16, body: &[u8]) -> Result<(), String>;
}

/// A TLS server to load.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub server_name: ServerName<'static>,
    pub tls: Arc<ClientConfig>,
}

/// TLS trusting only `ca_pem`, offering only HTTP/1.1.
pub fn client_config(ca_pem: &str) -> Result<Arc<ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.context("reading the CA certificate")?)
            .context("adding the CA certificate")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS client versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Answers received (right or wrong) inside the measured window.
    pub completed: u64,
    /// Wrong answers, HTTP errors and transport failures.
    pub errors: u64,
    pub latencies_us: Vec<u64>,
    /// Open loop only: how late the client itself started each request (from its scheduled
    /// time to the moment its connection began the exchange). It is part of every latency
    /// above; a large lag is the client's own scheduling on shared cores, not the server.
    pub send_lag_us: Vec<u64>,
    pub window: Duration,
    pub first_errors: Vec<String>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        if self.window.is_zero() {
            0.0
        } else {
            self.completed as f64 / self.window.as_secs_f64()
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_errors.len() < KEEP_ERRORS {
            self.first_errors.push(e);
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.completed += other.completed;
        self.latencies_us.extend(other.latencies_us);
        self.send_lag_us.extend(other.send_lag_us);
        for e in other.first_errors {
            if self.first_errors.len() < KEEP_ERRORS {
                self.first_errors.push(e);
            }
        }
        self.errors += other.errors;
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    tcp.set_nodelay(true)?;
    let tls = TlsConnector::from(target.tls.clone())
        .connect(target.server_name.clone(), tcp)
        .await
        .with_context(|| format!("TLS handshake with {}", target.addr))?;
    let (sender, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, path: &str, body: Bytes) -> Result<(u16, Bytes)> {
    let request = http::Request::post(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(body))?;
    let exchange = async {
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(anyhow!("no answer within {REQUEST_TIMEOUT:?}")),
    }
}

/// One connection's exchange; a failed connection is replaced before the next request.
struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn open(target: &Target) -> Result<Conn> {
        Ok(Conn {
            sender: Some(connect(target).await?),
            target: target.clone(),
        })
    }

    /// Sends request `i`; returns when its answer was complete (judging it is the client's
    /// work, kept out of the latency) and the verdict on it.
    async fn exchange<R: Requests>(&mut self, reqs: &R, i: usize) -> Result<(Instant, Result<(), String>)> {
        let sender = match self.sender.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => self.sender.insert(connect(&self.target).await?),
        };
        let (path, body) = reqs.request(i);
        match send(sender, path, body).await {
            Ok((status, body)) => {
                let answered = Instant::now();
                Ok((answered, reqs.check(i, status, &body)))
            }
            Err(e) => {
                self.sender = None;
                Err(e)
            }
        }
    }
}

async fn open_all(target: &Target, conns: usize) -> Result<Vec<Conn>> {
    futures::future::try_join_all((0..conns).map(|_| Conn::open(target))).await
}

/// Closed loop on `conns` connections: unmeasured for `warmup`, then measured for `measure`.
pub async fn closed_loop<R: Requests>(
    target: &Target,
    reqs: Arc<R>,
    conns: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<Outcome> {
    let connections = open_all(target, conns).await?;
    let t0 = Instant::now() + warmup;
    let t1 = t0 + measure;
    let n = reqs.count().max(1);
    let tasks = connections.into_iter().enumerate().map(|(c, mut conn)| {
        let reqs = reqs.clone();
        tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut i = c * 7919 % n;
            while Instant::now() < t1 {
                let started = Instant::now();
                let result = conn.exchange(reqs.as_ref(), i).await;
                let ended = result.as_ref().map_or_else(|_| Instant::now(), |(at, _)| *at);
                i = (i + 1) % n;
                if started < t0 || ended > t1 {
                    continue;
                }
                match result {
                    Ok((_, verdict)) => {
                        out.completed += 1;
                        out.latencies_us.push((ended - started).as_micros() as u64);
                        if let Err(e) = verdict {
                            out.error(e);
                        }
                    }
                    Err(e) => {
                        out.error(format!("{e:#}"));
                        // Do not spin on a server that refuses connections.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out
        })
    });
    let mut total = Outcome {
        window: measure,
        ..Outcome::default()
    };
    for t in futures::future::join_all(tasks).await {
        total.merge(t.context("load task panicked")?);
    }
    Ok(total)
}

/// Open loop: `rate_per_s` requests a second for `duration` over up to `conns` connections;
/// each latency counts from the request's scheduled time.
pub async fn open_loop<R: Requests>(
    target: &Target,
    reqs: Arc<R>,
    conns: usize,
    rate_per_s: f64,
    duration: Duration,
) -> Result<Outcome> {
    let connections = open_all(target, conns).await?;
    let total = pace::total(duration, rate_per_s);
    let gate = Arc::new(Semaphore::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // A thread paces the schedule: its sleeps are finer than tokio's 1 ms timer.
    let pacer = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            let mut released = 0u64;
            while released < total {
                let due = pace::due_by(start.elapsed(), rate_per_s).min(total);
                if due > released {
                    gate.add_permits((due - released) as usize);
                    released = due;
                }
                if let Some(wait) =
                    (start + pace::due_at(released, rate_per_s)).checked_duration_since(Instant::now())
                {
                    std::thread::sleep(wait);
                }
            }
            // Wake every connection so it sees the schedule is done.
            gate.add_permits(conns);
        })
    };
    let n = reqs.count().max(1) as u64;
    let tasks = connections.into_iter().map(|mut conn| {
        let (reqs, gate, next) = (reqs.clone(), gate.clone(), next.clone());
        tokio::spawn(async move {
            let mut out = Outcome::default();
            loop {
                match gate.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = start + pace::due_at(i, rate_per_s);
                let lag = Instant::now().saturating_duration_since(due);
                let result = conn.exchange(reqs.as_ref(), (i % n) as usize).await;
                match result {
                    Ok((answered, verdict)) => {
                        out.completed += 1;
                        out.latencies_us
                            .push(answered.saturating_duration_since(due).as_micros() as u64);
                        out.send_lag_us.push(lag.as_micros() as u64);
                        if let Err(e) = verdict {
                            out.error(e);
                        }
                    }
                    Err(e) => out.error(format!("{e:#}")),
                }
            }
            out
        })
    });
    let mut sum = Outcome::default();
    for t in futures::future::join_all(tasks).await {
        sum.merge(t.context("load task panicked")?);
    }
    sum.window = start.elapsed();
    pacer.join().map_err(|_| anyhow!("pacer thread panicked"))?;
    Ok(sum)
}
