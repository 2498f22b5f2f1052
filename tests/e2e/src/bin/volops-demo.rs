//! `make demo`: a sandbox cluster with volops in one process; applies examples/, shows a
//! denial, runs an Online Redis and an Offline ZooKeeper expansion, fills a volume for the
//! storage autoscaler to grow, then keeps the cluster
//! up for kubectl until Ctrl-C (`--once`: exit after the scenario, 0 only on success).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use volops_e2e::demo::{Output, run_scenario, table};
use volops_e2e::{Harness, HarnessOptions};
use volops_sandbox::ClusterConfig;

#[derive(Parser, Debug)]
#[command(
    name = "volops-demo",
    about = "volops end to end on a simulated cluster, in one process"
)]
struct Args {
    /// Run the scenario and exit: 0 only if every expansion succeeded, every denial was seen and
    /// the autoscaler grew the filled volume with one request.
    #[arg(long)]
    once: bool,
    /// The examples directory to apply.
    #[arg(long, default_value_os_t = volops_e2e::repo_root().join("examples"))]
    examples: PathBuf,
    /// Also write the kubeconfig here (default: a temporary file, printed at the end).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Deadline of each wait, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                // The simulated cluster's watches log connect errors after shutdown.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("error,kube_client=off,kube_runtime=off")
                }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("volops-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> volops_e2e::Result<ExitCode> {
    let out = Output::auto();
    let started = Instant::now();
    out.line("starting the sandbox cluster, the volops webhook and controller...");
    let harness = Harness::start(HarnessOptions {
        // Short but visible delays: pods Ready in 0.5 s, 0.2 s per resize step.
        cluster: ClusterConfig::default(),
        kubeconfig_out: args.kubeconfig.clone(),
        timeout: Duration::from_secs(args.timeout),
        ..HarnessOptions::default()
    })
    .await?;
    out.line(format!(
        "API server {}, webhook {}",
        harness.sandbox().url(),
        harness.webhook().url()
    ));
    let report = run_scenario(&harness, &args.examples, &out, Duration::from_secs(args.timeout)).await?;
    out.line("");
    out.line(table(&report.pvcs).trim_end());
    let ok = report.success();
    out.line(format!(
        "autoscaler: {} request(s), {}, then {}",
        report.autoscaled.requests.len(),
        report.autoscaled.phase,
        report.autoscaled.decision_after,
    ));
    out.line(format!(
        "{}: {}/{} expansions Successful, {}/{} denials seen, {:.1}s",
        if ok { "OK" } else { "FAILED" },
        report.expansions.iter().filter(|e| e.succeeded()).count(),
        report.expansions.len(),
        report.denials.iter().filter(|d| d.seen()).count(),
        report.denials.len(),
        started.elapsed().as_secs_f64()
    ));
    if args.once {
        harness.shutdown().await?;
        return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }
    let kc = harness.kubeconfig_path().display().to_string();
    out.line("");
    out.line("The cluster keeps running. Try:");
    out.line(format!("  export KUBECONFIG={kc}"));
    for cmd in [
        "kubectl get redis,zookeeper -n demo",
        "kubectl get pvc -n demo",
        "kubectl get petsets -n demo  # every database runs on PetSets, as in current KubeDB",
        "kubectl get redisopsrequest,zookeeperopsrequest -n demo",
        "kubectl describe redisopsrequest rd-online-volume-expansion -n demo",
        "kubectl get redisautoscaler rd-autoscaler -n demo -o yaml  # the autoscaler's decision",
        "volops-sandbox fill-volume --kubeconfig $KUBECONFIG -n demo data-redis-standalone-0 90%",
        "kubectl apply -f examples/zookeeper-online-expansion.yaml  # denied: 2Gi now",
    ] {
        out.line(format!("  {cmd}"));
    }
    out.line("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    harness.shutdown().await?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
