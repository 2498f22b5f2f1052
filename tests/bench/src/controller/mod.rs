//! `volops-bench controller`: N Redis clusters expanded Online at once with a fixed simulated
//! resize latency, against the same workload with PVC parallelism 1, and the controller's
//! memory with 10,000 PVCs in the cluster (docs/PERFORMANCE.md).
//!
//! Runs, each with a fresh controller child (`serve-controller`) on the same databases:
//! 1. all PVCs at once (`--pvc-parallelism 0`), 1Gi -> 2Gi;
//! 2. one PVC at a time per request (`--pvc-parallelism 1`, KubeDB's way), 2Gi -> 3Gi;
//! 3. unrelated PVCs added up to `--total-pvcs`, all at once again, 3Gi -> 4Gi.

pub mod cluster;
pub mod plan;
mod serve;

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
pub use serve::{ServeArgs, serve};

use crate::{
    proc::{self, Child},
    report::{Percentiles, emit, say},
};
use cluster::Topology;
use plan::{MAX_RSS_MIB_10K, MAX_WALL_OVER_CRITICAL, MIN_SPEEDUP_OVER_ONE, critical_path, verdict};

const BENCH: &str = "controller";
const NAMESPACE: &str = "bench";
const CLASS: &str = "bench-online";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Redis clusters, each expanded by one ops request.
    #[arg(long, default_value_t = 200)]
    pub clusters: u32,
    /// Shards per Redis cluster.
    #[arg(long, default_value_t = 3)]
    pub shards: u32,
    /// Pods (and PVCs) per shard.
    #[arg(long, default_value_t = 2)]
    pub replicas: u32,
    /// Simulated delay of each resize step, in milliseconds (StorageClass parameter).
    #[arg(long, default_value_t = 2000)]
    pub resize_delay_ms: u64,
    /// PVCs in the cluster for the memory run (unrelated ones are added); 0 skips that run.
    #[arg(long, default_value_t = 10_000)]
    pub total_pvcs: u32,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// CI smoke size: 3 clusters, 200 ms resize steps, 100 PVCs in the memory run.
    #[arg(long)]
    pub tiny: bool,
}

impl Args {
    fn sized(mut self) -> Self {
        if self.tiny {
            self.clusters = 3;
            self.resize_delay_ms = 200;
            self.total_pvcs = 100;
        }
        self
    }
}

/// What one run measured.
struct Run {
    wall: Duration,
    critical: Duration,
    api_requests: u64,
    /// Requests by `verb=..,resource=..`, largest first.
    api_requests_by: Vec<(String, u64)>,
    idle_rss_mib: f64,
    peak_rss_mib: f64,
    failed: Vec<String>,
}

struct Bench<'a> {
    args: &'a Args,
    client: kube::Client,
    kubeconfig: std::path::PathBuf,
    databases: Vec<String>,
    topology: Topology,
    within: Duration,
}

pub async fn run(args: Args) -> Result<()> {
    let args = args.sized();
    let topology = Topology {
        shards: args.shards,
        replicas: args.replicas,
    };
    let delay = Duration::from_millis(args.resize_delay_ms);
    let (sandbox, client) = cluster::start(delay).await?;
    cluster::setup(&client, NAMESPACE, CLASS, delay).await?;
    let databases: Vec<String> = (0..args.clusters).map(|i| format!("rd{i}")).collect();
    let within = Duration::from_secs(args.timeout_s);
    let ready = cluster::create_databases(&client, NAMESPACE, CLASS, &databases, topology, within).await?;
    let pvcs = args.clusters * topology.pvcs();
    emit(
        BENCH,
        "setup",
        json!({"clusters": args.clusters, "pvcs": pvcs, "resize_delay_ms": args.resize_delay_ms,
               "ready_s": ready.as_secs_f64()}),
    );
    say(format!(
        "controller bench: {} Redis clusters ({}x{}), {pvcs} PVCs Ready in {:.1} s; resize step {} ms",
        args.clusters,
        topology.shards,
        topology.replicas,
        ready.as_secs_f64(),
        args.resize_delay_ms
    ));
    let bench = Bench {
        args: &args,
        client: client.clone(),
        kubeconfig: sandbox.kubeconfig_path().to_owned(),
        databases,
        topology,
        within,
    };
    let all = bench.expand("all-at-once", 0, "2Gi", "a", pvcs).await?;
    let one = bench.expand("parallelism-1", 1, "3Gi", "b", pvcs).await?;
    let big = if args.total_pvcs > pvcs {
        cluster::add_unrelated_pvcs(&client, args.total_pvcs - pvcs, 10).await?;
        Some(
            bench
                .expand("all-at-once-10k", 0, "4Gi", "c", args.total_pvcs)
                .await?,
        )
    } else {
        None
    };
    summarize(&args, &all, &one, big.as_ref());
    let failed: Vec<&String> = [Some(&all), Some(&one), big.as_ref()]
        .into_iter()
        .flatten()
        .flat_map(|r| &r.failed)
        .collect();
    if let Err(e) = sandbox.shutdown().await {
        say(format!("sandbox shutdown: {e}"));
    }
    if !failed.is_empty() {
        bail!("{} request(s) did not end Successful: {failed:?}", failed.len());
    }
    Ok(())
}

impl Bench<'_> {
    /// One expansion of every database with a fresh controller child.
    async fn expand(
        &self,
        label: &'static str,
        parallelism: u32,
        size: &str,
        tag: &str,
        pvcs_in_cluster: u32,
    ) -> Result<Run> {
        let args: Vec<String> = [
            "serve-controller",
            "--pause-handshake",
            "kubedb",
            "--pvc-parallelism",
            &parallelism.to_string(),
        ]
        .map(String::from)
        .to_vec();
        // Not measured: the previous run's databases settle first.
        cluster::wait_databases_ready(&self.client, NAMESPACE, &self.databases, self.within).await?;
        cluster::wait_pvcs_bound(&self.client, NAMESPACE, self.within).await?;
        let child = Child::spawn(&args, &self.kubeconfig, &[], Duration::from_secs(60)).await?;
        let metrics_url = child.info_str("metrics_url")?.to_owned();
        let http = reqwest::Client::new();
        // The start-up lists and watches are not part of the request's cost.
        let before = settled_requests(&http, &metrics_url).await?;
        let idle = child.memory()?;
        let cpu_before = (
            proc::cpu_seconds(child.pid())?,
            proc::cpu_seconds(std::process::id())?,
        );
        let expansion =
            cluster::expand_all(&self.client, NAMESPACE, &self.databases, size, tag, self.within).await?;
        let after = api_requests(&http, &metrics_url).await?;
        let memory = child.memory()?;
        let controller_cpu = proc::cpu_seconds(child.pid())? - cpu_before.0;
        let sandbox_cpu = proc::cpu_seconds(std::process::id())? - cpu_before.1;
        if let Err(e) = child.stop(Duration::from_secs(10)).await {
            say(format!("note: controller child stop: {e:#}"));
        }
        let per_request = self.topology.pvcs();
        let run = Run {
            wall: expansion.wall,
            critical: critical_path(
                Duration::from_millis(self.args.resize_delay_ms),
                per_request,
                (parallelism > 0).then_some(parallelism),
            ),
            api_requests: plan::requests_between(&before, &after)
                .iter()
                .map(|(_, n)| n)
                .sum(),
            api_requests_by: plan::requests_between(&before, &after),
            idle_rss_mib: idle.rss_mib,
            peak_rss_mib: memory.peak_rss_mib,
            failed: expansion.failed,
        };
        let pvcs = self.databases.len() as f64 * f64::from(per_request);
        // Where the time goes: when each step's condition appeared, over the requests.
        let milestones: serde_json::Map<String, serde_json::Value> = expansion
            .milestones
            .iter()
            .map(|(type_, at)| {
                let mut us: Vec<u64> = at.iter().map(|d| d.as_micros() as u64).collect();
                (type_.clone(), Percentiles::of(&mut us).to_json())
            })
            .collect();
        emit(
            BENCH,
            "run",
            json!({"label": label, "pvc_parallelism": parallelism, "requests": self.databases.len(),
                   "pvcs": pvcs, "pvcs_in_cluster": pvcs_in_cluster, "target_size": size,
                   "wall_s": run.wall.as_secs_f64(), "critical_path_s": run.critical.as_secs_f64(),
                   "wall_over_critical_path": ratio(run.wall, run.critical),
                   "api_requests": run.api_requests,
                   "api_requests_per_pvc": run.api_requests as f64 / pvcs.max(1.0),
                   "api_requests_per_pvc_by": run.api_requests_by.iter()
                       .map(|(k, n)| (k.clone(), json!(*n as f64 / pvcs.max(1.0))))
                       .collect::<serde_json::Map<_, _>>(),
                   "idle_rss_mib": run.idle_rss_mib, "peak_rss_mib": run.peak_rss_mib,
                   "controller_cpu_s": controller_cpu, "sandbox_cpu_s": sandbox_cpu,
                   "condition_true_at": milestones, "failed": run.failed}),
        );
        say(format!(
            "  {label}: {} requests in {:.2} s (critical path {:.2} s), {:.1} API requests/PVC, \
             controller RSS {:.1} MiB idle / {:.1} MiB peak, CPU controller {controller_cpu:.1} s / \
             sandbox {sandbox_cpu:.1} s, {} not Successful",
            self.databases.len(),
            run.wall.as_secs_f64(),
            run.critical.as_secs_f64(),
            run.api_requests as f64 / pvcs.max(1.0),
            run.idle_rss_mib,
            run.peak_rss_mib,
            run.failed.len()
        ));
        Ok(run)
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        return f64::INFINITY;
    }
    a.as_secs_f64() / b.as_secs_f64()
}

fn summarize(args: &Args, all: &Run, one: &Run, big: Option<&Run>) {
    let over = ratio(all.wall, all.critical);
    let speedup = ratio(one.wall, all.wall);
    let mut fields = json!({
        "wall_s": all.wall.as_secs_f64(), "critical_path_s": all.critical.as_secs_f64(),
        "wall_over_critical_path": over, "wall_target": MAX_WALL_OVER_CRITICAL,
        "wall_verdict": verdict(over <= MAX_WALL_OVER_CRITICAL),
        "parallelism_1_wall_s": one.wall.as_secs_f64(), "speedup_over_parallelism_1": speedup,
        "speedup_target": MIN_SPEEDUP_OVER_ONE,
        "speedup_verdict": verdict(speedup >= MIN_SPEEDUP_OVER_ONE),
        "speedup_ideal": ratio(one.critical, all.critical),
    });
    say(format!(
        "target wall time <= {MAX_WALL_OVER_CRITICAL}x critical path: {:.2} s / {:.2} s = {over:.2}x {}",
        all.wall.as_secs_f64(),
        all.critical.as_secs_f64(),
        verdict(over <= MAX_WALL_OVER_CRITICAL)
    ));
    say(format!(
        "target >= {MIN_SPEEDUP_OVER_ONE}x faster than parallelism 1: {:.2} s / {:.2} s = {speedup:.2}x \
         (ideal {:.0}x) {}",
        one.wall.as_secs_f64(),
        all.wall.as_secs_f64(),
        ratio(one.critical, all.critical),
        verdict(speedup >= MIN_SPEEDUP_OVER_ONE)
    ));
    if let (Some(big), Some(map)) = (big, fields.as_object_mut()) {
        let ok = big.peak_rss_mib <= MAX_RSS_MIB_10K;
        map.insert("pvcs_in_cluster".into(), json!(args.total_pvcs));
        map.insert("rss_peak_mib_with_total_pvcs".into(), json!(big.peak_rss_mib));
        map.insert("rss_target_mib".into(), json!(MAX_RSS_MIB_10K));
        map.insert("rss_verdict".into(), json!(verdict(ok)));
        say(format!(
            "target controller RSS <= {MAX_RSS_MIB_10K} MiB with {} PVCs: peak {:.1} MiB (idle {:.1}) {}",
            args.total_pvcs,
            big.peak_rss_mib,
            big.idle_rss_mib,
            verdict(ok)
        ));
    }
    emit(BENCH, "summary", fields);
}

/// The controller's request counter, by label set.
async fn api_requests(http: &reqwest::Client, url: &str) -> Result<BTreeMap<String, u64>> {
    let text = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("scraping {url}"))?
        .text()
        .await?;
    plan::api_requests_by_labels(&text)
        .ok_or_else(|| anyhow!("no volops_controller_api_requests_total at {url}"))
}

/// The request counter once it stops moving (the controller's start-up lists are done).
async fn settled_requests(http: &reqwest::Client, url: &str) -> Result<BTreeMap<String, u64>> {
    let mut last = api_requests(http, url).await?;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = api_requests(http, url).await?;
        if now == last && !now.is_empty() {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}
