//! `volops-bench autoscaler`: the storage autoscaler polling N databases (one PVC each, spread
//! over the nodes), each with a `RedisAutoscaler` that is on: the API requests and CPU of the
//! controller per interval once every status is written (the steady state: usage below the
//! threshold), then a few databases filled past the threshold: exactly one request each
//! (docs/PERFORMANCE.md, "Storage autoscaler").

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::json;
use volops_sandbox::{ClusterConfig, Fill, Sandbox, SandboxOptions};

use crate::{
    controller::{
        cluster::{self, Topology},
        plan::{api_requests_by_labels, requests_between},
    },
    proc::{self, Child},
    report::{emit, say},
};

const BENCH: &str = "autoscaler";
const NAMESPACE: &str = "bench";
const CLASS: &str = "bench-online";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Databases, each with one PVC and an autoscaler that is on.
    #[arg(long, default_value_t = 1000)]
    pub databases: u32,
    /// Nodes (one kubelet Summary read each per interval).
    #[arg(long, default_value_t = 20)]
    pub nodes: usize,
    /// The autoscaler's interval, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub interval_ms: u64,
    /// Intervals measured in the steady state.
    #[arg(long, default_value_t = 6)]
    pub intervals: u32,
    /// Databases filled past the threshold afterwards.
    #[arg(long, default_value_t = 10)]
    pub fill: u32,
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
    /// CI smoke size: 10 databases on 2 nodes, 1 s intervals, 2 filled.
    #[arg(long)]
    pub tiny: bool,
}

impl Args {
    fn sized(mut self) -> Self {
        if self.tiny {
            (
                self.databases,
                self.nodes,
                self.interval_ms,
                self.intervals,
                self.fill,
            ) = (10, 2, 1000, 3, 2);
        }
        self
    }
}

async fn start(nodes: usize) -> Result<(Sandbox, kube::Client)> {
    let sandbox = Sandbox::start(SandboxOptions {
        cluster: Some(
            ClusterConfig {
                resize_delay: Duration::from_millis(100),
                pod_ready_delay: Duration::from_millis(50),
                pod_grace_cap: Duration::from_millis(50),
                pv_provision_delay: Duration::from_millis(10),
                ..ClusterConfig::default()
            }
            .with_nodes(nodes),
        ),
        ..SandboxOptions::default()
    })
    .await
    .context("starting the sandbox")?;
    let client = sandbox.client().await.context("sandbox client")?;
    Ok((sandbox, client))
}

fn autoscalers(client: &kube::Client) -> Api<DynamicObject> {
    let ar = volops_controller::autoscaler::watch::autoscaler_resource(volops_shared::DatabaseKind::Redis);
    Api::namespaced_with(client.clone(), NAMESPACE, &ar)
}

async fn create_autoscalers(client: &kube::Client, names: &[String]) -> Result<()> {
    let api = autoscalers(client);
    stream::iter(names.iter().cloned())
        .map(|db| {
            let api = api.clone();
            async move {
                let obj: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "autoscaling.kubedb.com/v1alpha1", "kind": "RedisAutoscaler",
                    "metadata": {"name": format!("{db}-as"), "namespace": NAMESPACE},
                    "spec": {"databaseRef": {"name": db}, "opsRequestOptions": {"apply": "Always"},
                             "storage": {"cluster": {"trigger": "On", "usageThreshold": 80,
                                                     "scalingThreshold": 50, "expansionMode": "Online"}}}
                }))?;
                api.create(&PostParams::default(), &obj)
                    .await
                    .with_context(|| format!("autoscaler of {db}"))?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await
}

/// What the controller's /metrics says: requests by label set, decisions so far.
struct Scrape {
    requests: std::collections::BTreeMap<String, u64>,
    decisions: u64,
}

async fn scrape(http: &reqwest::Client, url: &str) -> Result<Scrape> {
    let text = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("scraping {url}"))?
        .text()
        .await?;
    let decisions = text
        .lines()
        .filter(|l| l.starts_with("volops_autoscaler_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64;
    Ok(Scrape {
        requests: api_requests_by_labels(&text).unwrap_or_default(),
        decisions,
    })
}

/// Waits until the controller made at least `decisions` decisions; the scrape then.
async fn until_decisions(
    http: &reqwest::Client,
    url: &str,
    decisions: u64,
    within: Duration,
) -> Result<Scrape> {
    let deadline = Instant::now() + within;
    loop {
        let s = scrape(http, url).await?;
        if s.decisions >= decisions {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("only {} of {decisions} decisions in {within:?}", s.decisions);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn owned_requests(client: &kube::Client) -> Result<usize> {
    let list = cluster::ops_requests(client, NAMESPACE)
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .iter()
        .filter(|r| r.metadata.owner_references.is_some())
        .count())
}

pub async fn run(args: Args) -> Result<()> {
    let args = args.sized();
    let within = Duration::from_secs(args.timeout_s);
    let (sandbox, client) = start(args.nodes).await?;
    cluster::setup(&client, NAMESPACE, CLASS, Duration::from_millis(100)).await?;
    let names: Vec<String> = (0..args.databases).map(|i| format!("rd{i}")).collect();
    let topology = Topology {
        shards: 1,
        replicas: 1,
    };
    let ready = cluster::create_databases(&client, NAMESPACE, CLASS, &names, topology, within).await?;
    cluster::wait_pvcs_bound(&client, NAMESPACE, within).await?;
    create_autoscalers(&client, &names).await?;
    say(format!(
        "autoscaler bench: {} databases (1 PVC each) on {} nodes Ready in {:.1} s; interval {} ms",
        args.databases,
        args.nodes,
        ready.as_secs_f64(),
        args.interval_ms
    ));
    let interval = args.interval_ms.to_string();
    let child_args = ["serve-controller", "--autoscaler-interval-ms", &interval].map(String::from);
    let child = Child::spawn(
        &child_args,
        sandbox.kubeconfig_path(),
        &[],
        Duration::from_secs(60),
    )
    .await?;
    let url = child.info_str("metrics_url")?.to_owned();
    let http = reqwest::Client::new();
    let n = u64::from(args.databases);
    // The first interval writes every autoscaler's status; the second is the steady state.
    let first = until_decisions(&http, &url, 2 * n, within).await?;
    let cpu0 = proc::cpu_seconds(child.pid())?;
    let steady_started = Instant::now();
    let last = until_decisions(
        &http,
        &url,
        first.decisions + u64::from(args.intervals) * n,
        within,
    )
    .await?;
    let wall = steady_started.elapsed();
    let cpu = proc::cpu_seconds(child.pid())? - cpu0;
    let intervals = (last.decisions - first.decisions) as f64 / n as f64;
    let by = requests_between(&first.requests, &last.requests);
    let per_interval: u64 = by.iter().map(|(_, c)| c).sum();
    let status_writes: u64 = first
        .requests
        .iter()
        .filter(|(k, _)| k.contains("autoscalers/status"))
        .map(|(_, c)| c)
        .sum();
    let memory = child.memory()?;
    // A few databases fill up: exactly one request each.
    for db in names.iter().take(args.fill as usize) {
        let claim = format!("data-{db}-shard0-0");
        sandbox
            .fill_volume(NAMESPACE, &claim, Fill::Percent(85.0))
            .await
            .with_context(|| format!("filling {claim}"))?;
    }
    let filled = Instant::now();
    let fill_decisions = scrape(&http, &url).await?.decisions;
    until_decisions(&http, &url, fill_decisions + 3 * n, within).await?;
    let created = owned_requests(&client).await?;
    if let Err(e) = child.stop(Duration::from_secs(10)).await {
        say(format!("note: controller child stop: {e:#}"));
    }
    let per = |x: f64| x / intervals.max(1.0);
    emit(
        BENCH,
        "run",
        json!({"databases": args.databases, "nodes": args.nodes, "interval_ms": args.interval_ms,
               "intervals": intervals, "api_requests_per_interval": per(per_interval as f64),
               "api_requests_per_interval_by": by.iter().map(|(k, c)| (k.clone(), json!(per(*c as f64))))
                   .collect::<serde_json::Map<_, _>>(),
               "controller_cpu_s_per_interval": per(cpu), "steady_wall_s": wall.as_secs_f64(),
               "status_writes_first_intervals": status_writes, "rss_mib": memory.rss_mib,
               "peak_rss_mib": memory.peak_rss_mib, "filled": args.fill, "requests_created": created,
               "fill_to_requests_s": filled.elapsed().as_secs_f64()}),
    );
    say(format!(
        "  steady state: {:.1} API requests and {:.3} s controller CPU per interval ({} databases, {} nodes), \
         {status_writes} status writes in the first intervals, RSS {:.1} MiB (peak {:.1})",
        per(per_interval as f64),
        per(cpu),
        args.databases,
        args.nodes,
        memory.rss_mib,
        memory.peak_rss_mib
    ));
    for (k, c) in &by {
        say(format!("    {k}: {:.1}/interval", per(*c as f64)));
    }
    say(format!(
        "  {} databases filled past the threshold: {created} request(s) after 3 intervals",
        args.fill
    ));
    if let Err(e) = sandbox.shutdown().await {
        say(format!("sandbox shutdown: {e}"));
    }
    if created != args.fill as usize {
        bail!("{} databases filled, {created} requests created", args.fill);
    }
    Ok(())
}
