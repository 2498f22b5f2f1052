//! `volops-bench webhook|webhook-flood|controller|autoscaler|chaos|scale`: benchmarks that print one JSON object per result
//! line on stdout and a short human summary on stderr (docs/PERFORMANCE.md).
//!
//! The webhook and the controller under test run as child processes of this binary (hidden
//! `serve-*` subcommands calling the same library entry points as their own binaries), so
//! their resident memory is measured alone, apart from the sandbox and the load client.

mod autoscaler;
mod chaos;
mod controller;
mod load;
mod proc;
mod report;
mod scale;
mod webhook;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The allocator of the volops-controller and volops-webhook binaries, so that the processes
// under test (children of this binary) allocate as those do. The `system-alloc` feature
// leaves the system's malloc, which heap profilers see (see `proc::WRAP_ENV`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "volops-bench", about = "volops benchmarks (docs/PERFORMANCE.md)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Admission throughput and latency against a no-op handler on the same TLS stack.
    Webhook(webhook::Args),
    /// The webhook's memory and a real review under floods of idle connections and large bodies.
    WebhookFlood(webhook::flood::Args),
    /// Many Online expansions at once, against the same run with PVC parallelism 1.
    Controller(controller::Args),
    /// The storage autoscaler polling many databases: API requests and CPU per interval.
    Autoscaler(autoscaler::Args),
    /// Kill points and injected faults with the reliability invariants.
    Chaos(chaos::Args),
    /// Both binaries on clusters of 10,000 and 100,000 PVCs: start-up, memory, sync requests.
    Scale(scale::Args),
    /// (internal) The webhook, or the no-op handler, as a child process.
    #[command(hide = true)]
    ServeWebhook(webhook::ServeArgs),
    /// (internal) The controller as a child process.
    #[command(hide = true)]
    ServeController(controller::ServeArgs),
}

/// Quiet by default: the benchmarks provoke errors on purpose (RUST_LOG=warn shows them).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_logs();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Webhook(args) => webhook::run(args).await,
        Command::WebhookFlood(args) => webhook::flood::run(args).await,
        Command::Controller(args) => controller::run(args).await,
        Command::Autoscaler(args) => autoscaler::run(args).await,
        Command::Chaos(args) => chaos::run(args).await,
        Command::Scale(args) => scale::run(args).await,
        Command::ServeWebhook(args) => webhook::serve(args).await,
        Command::ServeController(args) => controller::serve(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("volops-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
