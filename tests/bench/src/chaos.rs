//! `volops-bench chaos`: the reliability suite's chaos run (`volops_e2e::chaos`) at volume:
//! hundreds of controller kill points, API faults and watch cuts over several copies of the
//! database set. Reports counts, and every violated invariant with the seed that replays it.

use anyhow::{Context, Result, bail};
use serde_json::json;
use volops_e2e::chaos::{self, ChaosConfig, ChaosReport};

use crate::report::{emit, say};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seed of the first run (random if not given); run i uses seed + i.
    #[arg(long)]
    seed: Option<u64>,
    /// Controller kill points per run, at least.
    #[arg(long, default_value_t = 300)]
    kills: usize,
    /// Copies of the six-database set (Redis standalone/cluster, ZooKeeper; Online/Offline;
    /// one on a class whose driver fails every resize).
    #[arg(long, default_value_t = 2)]
    copies: usize,
    /// Rounds of expansions every database does at least.
    #[arg(long, default_value_t = 2)]
    min_rounds: usize,
    /// Share of API requests failed (500/409/429), per rule.
    #[arg(long, default_value_t = 0.1)]
    fault_rate: f64,
    /// Cut every watch stream this often, in seconds (0: never).
    #[arg(long, default_value_t = 2)]
    watch_cut_seconds: u64,
    /// Independent runs, each in a fresh sandbox.
    #[arg(long, default_value_t = 1)]
    runs: u64,
    /// CI smoke test: one copy, 3 kill points, one round.
    #[arg(long)]
    tiny: bool,
}

impl Args {
    fn config(&self, run: u64, first_seed: u64) -> ChaosConfig {
        let mut c = ChaosConfig {
            seed: first_seed.wrapping_add(run),
            min_kills: self.kills,
            copies: self.copies,
            min_rounds: self.min_rounds,
            fault_rate: self.fault_rate,
            watch_cut_seconds: self.watch_cut_seconds,
            ..ChaosConfig::default()
        };
        if self.tiny {
            c.min_kills = 3;
            c.copies = 1;
            c.min_rounds = 1;
        }
        c
    }
}

fn emit_run(report: &ChaosReport, config: &ChaosConfig) {
    for m in &report.missing {
        let rounds = report.outcomes.iter().filter(|o| o.db == m.db).count();
        emit(
            "chaos",
            "database",
            json!({"seed": report.seed, "database": m.db, "mode": m.mode, "requests": rounds,
                   "max_pods_missing_at_once": m.max_missing, "allowed_missing": m.allowed,
                   "pod_events": m.pod_events}),
        );
    }
    // Failed is an allowed end (with the cleanup checked); say why, so a surprise shows.
    for f in report.failed() {
        emit(
            "chaos",
            "failed_request",
            json!({"seed": report.seed, "database": f.db, "request": f.request, "size": f.size,
                   "reason": f.reason}),
        );
    }
    for v in &report.violations {
        emit("chaos", "violation", json!({"seed": report.seed, "violation": v}));
    }
    emit(
        "chaos",
        "run",
        json!({"seed": report.seed, "databases": report.databases, "copies": config.copies,
               "kill_points": report.kill_points, "fault_rate": config.fault_rate,
               "watch_cut_seconds": config.watch_cut_seconds,
               "requests": report.outcomes.len(), "successful": report.successful(),
               "failed_with_cleanup": report.failed().len(), "pvcs_watched": report.pvcs_watched,
               "controller_api_requests": report.api_requests,
               "reconcile_errors": report.reconcile_errors, "graceful_stop": report.graceful_stop,
               "forged_saved_states": report.forged, "forged_refused": report.forged_refused,
               "database_edits": report.database_edits,
               "violations": report.violations.len(), "seconds": report.elapsed.as_secs_f64()}),
    );
}

pub async fn run(args: Args) -> Result<()> {
    let first_seed = args.seed.unwrap_or_else(rand::random);
    let mut kills = 0;
    let mut requests = 0;
    let mut violations = Vec::new();
    for i in 0..args.runs.max(1) {
        let config = args.config(i, first_seed);
        say(format!(
            "chaos run {}: seed {} ({} databases, >= {} kill points, {:.0}% API faults, watch cuts every {} s)",
            i + 1,
            config.seed,
            config.copies.max(1) * 6,
            config.min_kills,
            config.fault_rate * 100.0,
            config.watch_cut_seconds
        ));
        let report = chaos::run(&config)
            .await
            .with_context(|| format!("chaos run with seed {}", config.seed))?;
        emit_run(&report, &config);
        say(report.summary());
        kills += report.kill_points;
        requests += report.outcomes.len();
        violations.extend(
            report
                .violations
                .iter()
                .map(|v| format!("seed {}: {v}", report.seed)),
        );
    }
    say(format!(
        "chaos total: {kills} kill points, {requests} expansions, {} violation(s)",
        violations.len()
    ));
    if !violations.is_empty() {
        for v in &violations {
            say(format!("  VIOLATION {v}"));
        }
        bail!("{} invariant violation(s); replay with --seed", violations.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn runs_get_consecutive_seeds_and_tiny_shrinks_the_run() {
        let args = Cli::parse_from(["x", "--seed", "7", "--kills", "500"]).args;
        assert_eq!(args.config(0, 7).seed, 7);
        assert_eq!(args.config(2, 7).seed, 9);
        assert_eq!(args.config(0, 7).min_kills, 500);
        assert_eq!(args.config(0, 7).copies, 2);
        let tiny = Cli::parse_from(["x", "--tiny"]).args;
        let c = tiny.config(0, 1);
        assert_eq!((c.min_kills, c.copies, c.min_rounds), (3, 1, 1));
    }
}
