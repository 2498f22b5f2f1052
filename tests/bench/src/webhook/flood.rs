//! `volops-bench webhook-flood`: the webhook's resident memory, and whether a real review still
//! gets through, under the floods of issue 18 (finding 7): thousands of idle connections, the
//! same under a low open-file limit, dozens of concurrent 8 MiB bodies. Each flood hits a fresh
//! child process (its peak RSS is its own), with the limits the chart ships and again with every
//! limit out of reach. The flood comes from 127.0.0.2, the real reviews from 127.0.0.1, as an
//! attacking pod and the API server have addresses of their own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use volops_sandbox::{Sandbox, SandboxOptions};

use super::mix::{self, Case};
use super::{fixture, populate, probe};
use crate::load;
use crate::proc::{Child, Memory};
use crate::report::{emit, say};

const BENCH: &str = "webhook-flood";
/// kube-apiserver's default webhook timeout: a review slower than this fails.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
const FLOOD_FROM: [u8; 4] = [127, 0, 0, 2];
const REVIEW_FROM: [u8; 4] = [127, 0, 0, 1];
/// Connections opened at once while flooding.
const OPENING: usize = 64;
/// A flooding connection not established within this is given up (the server is not
/// accepting: its open-file limit is reached).
const FLOOD_CONNECT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Idle connections of the idle floods (half HTTP/1.1 keep-alive after one request, half
    /// HTTP/2 after its preface).
    #[arg(long, default_value_t = 3000)]
    idle: usize,
    /// Concurrent large bodies of the body flood.
    #[arg(long, default_value_t = 30)]
    bodies: usize,
    /// Size of each large body (just under the 8 MiB limit).
    #[arg(long, default_value_t = 8 * 1024 * 1024 - 64 * 1024)]
    body_bytes: usize,
    /// The open-file limit of the low-limit idle flood.
    #[arg(long, default_value_t = 1024)]
    low_nofile: u64,
    /// Databases in the cluster (20 a namespace, 6 PVCs each on average).
    #[arg(long, default_value_t = 200)]
    databases: usize,
    /// The memory limit of the chart's webhook pod, in MiB: the verdict.
    #[arg(long, default_value_t = 256.0)]
    limit_mib: f64,
    /// Only the shipped limits (skip the runs with every limit out of reach).
    #[arg(long)]
    only_limited: bool,
    /// CI smoke size: 200 idle connections, 6 bodies of 2 MiB, 20 databases.
    #[arg(long)]
    tiny: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flood {
    Idle,
    IdleLowNofile,
    Bodies,
}

impl Flood {
    fn name(self) -> &'static str {
        match self {
            Flood::Idle => "idle",
            Flood::IdleLowNofile => "idle_low_nofile",
            Flood::Bodies => "bodies",
        }
    }
}

/// What one flood did to one child.
struct Run {
    limits: bool,
    flood: Flood,
    before: Memory,
    after: Memory,
    /// Flood connections still open (client side) / connections the webhook reports open
    /// (None: its metrics did not answer, as when it has no file descriptor left to accept).
    held: usize,
    open: Option<usize>,
    /// The real review sent while flooding: its time, or why it failed.
    review: Result<Duration, String>,
    /// Body flood: answers 503 at the first attempt, bodies finally reviewed, failed.
    bodies: Option<(usize, usize, usize)>,
}

pub async fn run(mut args: Args) -> Result<()> {
    if args.tiny {
        args.idle = 200;
        args.bodies = 6;
        args.body_bytes = 2 * 1024 * 1024;
        args.low_nofile = 128;
        args.databases = 20;
    }
    // The flood's sockets live in this process.
    volops_webhook::fd_limit::raise_nofile();
    let sandbox = Sandbox::start(SandboxOptions::default()).await?;
    let client = sandbox.client().await?;
    populate::cluster_wide(&client).await?;
    let namespaces = fixture::namespaces_for_databases(args.databases);
    let counts = populate::namespaces(&client, 0..namespaces).await?;
    emit(BENCH, "setup", counts.to_json());

    let certs = tempfile::tempdir()?;
    let bundle = volops_certs::generate(&["localhost".into()], &[[127, 0, 0, 1].into()], 1)?;
    let (cert, key) = (certs.path().join("tls.crt"), certs.path().join("tls.key"));
    std::fs::write(&cert, &bundle.cert_pem)?;
    std::fs::write(&key, &bundle.key_pem)?;
    let h1_tls = load::client_config(&bundle.ca_cert_pem)?;
    let h2_tls = {
        let mut c = (*h1_tls).clone();
        c.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(c)
    };
    let reviews = mix::build(50, namespaces, 9);
    let real = reviews
        .iter()
        .find(|r| r.case == Case::Valid)
        .ok_or_else(|| anyhow!("no valid review in the mix"))?
        .clone();
    let big = Bytes::from(big_review(&real.body, args.body_bytes)?);

    let mut runs = Vec::new();
    let settings: &[bool] = if args.only_limited {
        &[true]
    } else {
        &[true, false]
    };
    for &limits in settings {
        for flood in [Flood::Idle, Flood::IdleLowNofile, Flood::Bodies] {
            let mut child_args: Vec<String> = vec![
                "serve-webhook".into(),
                "--handler".into(),
                "webhook".into(),
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ];
            if !limits {
                child_args.push("--limits-off".into());
            }
            if flood == Flood::IdleLowNofile {
                child_args.extend(["--nofile".into(), args.low_nofile.to_string()]);
            }
            let child = Child::spawn(
                &child_args,
                sandbox.kubeconfig_path(),
                &[],
                Duration::from_secs(60),
            )
            .await?;
            let addr: SocketAddr = child.info_str("https_addr")?.parse()?;
            let probe_addr: SocketAddr = child.info_str("probe_addr")?.parse()?;
            probe::wait_synced(probe_addr, &counts, Duration::from_secs(120)).await?;
            let before = child.memory()?;
            let run = match flood {
                Flood::Idle | Flood::IdleLowNofile => {
                    let held = idle_flood(addr, &h1_tls, &h2_tls, args.idle).await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let review = real_review(addr, &h1_tls, &real).await;
                    let after = child.memory()?;
                    let open = open_connections(probe_addr).await;
                    let n = held.iter().filter(|h| h.is_open()).count();
                    drop(held);
                    Run {
                        limits,
                        flood,
                        before,
                        after,
                        held: n,
                        open,
                        review,
                        bodies: None,
                    }
                }
                Flood::Bodies => {
                    let flooding = tokio::spawn(body_flood(addr, h1_tls.clone(), big.clone(), args.bodies));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let review = real_review(addr, &h1_tls, &real).await;
                    let bodies = flooding.await.context("body flood task")?;
                    let after = child.memory()?;
                    Run {
                        limits,
                        flood,
                        before,
                        after,
                        held: args.bodies,
                        open: Some(0),
                        review,
                        bodies: Some(bodies),
                    }
                }
            };
            line(&run, args.limit_mib);
            child.stop(Duration::from_secs(20)).await.ok();
            runs.push(run);
        }
    }
    sandbox.shutdown().await?;
    summary(&runs, &args)
}

/// A valid review grown to `bytes` with an annotation (still a review the webhook decides).
fn big_review(body: &[u8], bytes: usize) -> Result<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body)?;
    let size = serde_json::to_vec(&v)?.len();
    let pad = bytes
        .checked_sub(size + 64)
        .ok_or_else(|| anyhow!("--body-bytes {bytes} is smaller than a review"))?;
    let meta = v
        .pointer_mut("/request/object/metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("review without object metadata"))?;
    meta.insert("annotations".into(), json!({"flood": "x".repeat(pad)}));
    Ok(serde_json::to_vec(&v)?)
}

async fn tls_from(
    from: [u8; 4],
    addr: SocketAddr,
    tls: &Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost")?;
    Ok(TlsConnector::from(tls.clone()).connect(name, tcp).await?)
}

/// A connection the flood keeps open (dropping it closes it).
enum Held {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Held {
    /// Whether the server has not closed it.
    fn is_open(&self) -> bool {
        match self {
            Held::H1(s) => !s.is_closed(),
            Held::H2(s) => !s.is_closed(),
        }
    }
}

/// Opens `n` idle connections from the flooding address: HTTP/1.1 ones after one request
/// (keep-alive), HTTP/2 ones after their preface and settings. Those the server refuses or
/// closes are not counted.
async fn idle_flood(
    addr: SocketAddr,
    h1_tls: &Arc<ClientConfig>,
    h2_tls: &Arc<ClientConfig>,
    n: usize,
) -> Vec<Held> {
    futures::stream::iter(0..n)
        .map(|i| {
            let tls = if i % 2 == 0 {
                h1_tls.clone()
            } else {
                h2_tls.clone()
            };
            async move { open_idle(addr, &tls, i % 2 == 1).await.ok() }
        })
        .buffer_unordered(OPENING)
        .filter_map(|held| async move { held })
        .collect()
        .await
}

async fn open_idle(addr: SocketAddr, tls: &Arc<ClientConfig>, h2: bool) -> Result<Held> {
    let stream = tokio::time::timeout(FLOOD_CONNECT, tls_from(FLOOD_FROM, addr, tls)).await??;
    let io = TokioIo::new(stream);
    if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        return Ok(Held::H2(sender));
    }
    let (mut sender, conn) = http1::handshake(io).await?;
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))?;
    let resp = sender.send_request(req).await?;
    resp.into_body().collect().await?;
    Ok(Held::H1(sender))
}

/// One review from the API server's address on a new connection, within kube-apiserver's timeout.
async fn real_review(
    addr: SocketAddr,
    tls: &Arc<ClientConfig>,
    review: &mix::Review,
) -> Result<Duration, String> {
    let started = Instant::now();
    let attempt = async {
        let stream = tls_from(REVIEW_FROM, addr, tls)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let (status, body) = post(&mut sender, review.path, review.body.clone()).await?;
        mix::check(review, status, &body, true)
    };
    match tokio::time::timeout(REVIEW_TIMEOUT, attempt).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {REVIEW_TIMEOUT:?}")),
    }
}

async fn post(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    path: &str,
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let req = http::Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// `n` large reviews at once from the flooding address, each retried on 503 after its
/// Retry-After within kube-apiserver's timeout, as its client does. Returns (503s at the first
/// attempt, reviews answered 200, reviews that failed).
async fn body_flood(
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
    body: Bytes,
    n: usize,
) -> (usize, usize, usize) {
    let outcomes = futures::future::join_all((0..n).map(|_| {
        let (tls, body) = (tls.clone(), body.clone());
        async move {
            let started = Instant::now();
            let mut first_refused = None;
            loop {
                let status = async {
                    let stream = tls_from(FLOOD_FROM, addr, &tls)
                        .await
                        .map_err(|e| e.to_string())?;
                    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(conn);
                    post(&mut sender, "/validate", body.clone()).await.map(|(s, _)| s)
                }
                .await;
                first_refused.get_or_insert(status == Ok(503));
                match status {
                    Ok(503) if started.elapsed() + Duration::from_secs(1) < REVIEW_TIMEOUT => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Ok(200) => return (first_refused == Some(true), true),
                    _ => return (first_refused == Some(true), false),
                }
            }
        }
    }))
    .await;
    let refused = outcomes.iter().filter(|(r, _)| *r).count();
    let ok = outcomes.iter().filter(|(_, ok)| *ok).count();
    (refused, ok, n - ok)
}

/// `volops_webhook_connections` from the webhook's metrics (0 when unreadable).
async fn open_connections(probe_addr: SocketAddr) -> Option<usize> {
    // A webhook out of file descriptors cannot accept the scrape: wait no longer than the API
    // server would for a review.
    let scrape = async {
        reqwest::get(format!("http://{probe_addr}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let text = tokio::time::timeout(REVIEW_TIMEOUT, scrape)
        .await
        .ok()
        .flatten()?;
    text.lines()
        .find_map(|l| l.strip_prefix("volops_webhook_connections "))
        .and_then(|v| v.trim().parse().ok())
}

fn passed(run: &Run, limit_mib: f64) -> bool {
    run.after.peak_rss_mib <= limit_mib && run.review.is_ok()
}

fn line(run: &Run, limit_mib: f64) {
    let mut fields = json!({
        "limits": if run.limits { "on" } else { "off" },
        "flood": run.flood.name(),
        "rss_before_mib": run.before.rss_mib,
        "rss_mib": run.after.rss_mib,
        "peak_rss_mib": run.after.peak_rss_mib,
        "flood_connections_held": run.held,
        "webhook_connections_open": run.open,
        "review_ok": run.review.is_ok(),
        "review_ms": run.review.as_ref().map(|d| d.as_secs_f64() * 1e3).ok(),
        "review_error": run.review.as_ref().err(),
    });
    if let Some((refused, ok, failed)) = run.bodies {
        fields["bodies_first_503"] = json!(refused);
        fields["bodies_reviewed"] = json!(ok);
        fields["bodies_failed"] = json!(failed);
    }
    if run.limits {
        fields["limit_mib"] = json!(limit_mib);
        fields["pass"] = json!(passed(run, limit_mib));
    }
    emit(BENCH, "flood", fields);
}

fn summary(runs: &[Run], args: &Args) -> Result<()> {
    say(format!(
        "webhook flood bench: {} idle connections, {} concurrent bodies of {:.1} MiB, low open-file limit {}",
        args.idle,
        args.bodies,
        args.body_bytes as f64 / 1048576.0,
        args.low_nofile
    ));
    let mut missed = 0;
    for run in runs {
        let verdict = match (run.limits, passed(run, args.limit_mib)) {
            (false, _) => "    ",
            (true, true) => "PASS",
            (true, false) => {
                missed += 1;
                "MISS"
            }
        };
        let review = match &run.review {
            Ok(d) => format!("real review {:.1} ms", d.as_secs_f64() * 1e3),
            Err(e) => format!("real review FAILED ({e})"),
        };
        let detail = match run.bodies {
            Some((refused, ok, failed)) => {
                format!("{refused} answered 503 first, {ok} reviewed, {failed} failed")
            }
            None => format!(
                "{} flood connections still open, {}",
                run.held,
                run.open
                    .map_or("the webhook's metrics did not answer".into(), |n| {
                        format!("{n} open in the webhook")
                    })
            ),
        };
        say(format!(
            "  {verdict} limits {:3} {:16} RSS {:.1} -> {:.1} MiB (peak {:.1}, limit {:.0}); {review}; {detail}",
            if run.limits { "on" } else { "off" },
            run.flood.name(),
            run.before.rss_mib,
            run.after.rss_mib,
            run.after.peak_rss_mib,
            args.limit_mib,
        ));
    }
    if missed > 0 && !args.tiny {
        bail!("{missed} flood(s) with the shipped limits missed");
    }
    Ok(())
}
