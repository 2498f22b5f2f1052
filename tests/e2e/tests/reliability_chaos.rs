//! Chaos in CI: `volops_e2e::chaos` with the six-database set, at least VOLOPS_CHAOS_KILLS
//! (default 30) controller kill points, 10% of API requests failing (500/409/429) and watch
//! streams cut every 2 s. VOLOPS_CHAOS_SEED replays a run. `volops-bench chaos` runs the same
//! code at volume. The invariants are listed in the module's documentation.

use volops_e2e::chaos::{self, ChaosConfig};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expansions_survive_controller_kills_and_api_faults() {
    // RUST_LOG=volops_controller=debug shows the controller's steps when a seed needs a look.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let config = ChaosConfig {
        seed: env_u64("VOLOPS_CHAOS_SEED").unwrap_or_else(rand::random),
        min_kills: env_u64("VOLOPS_CHAOS_KILLS").unwrap_or(30) as usize,
        ..ChaosConfig::default()
    };
    println!(
        "chaos seed {0} (VOLOPS_CHAOS_SEED={0} replays the kill delays and fault rolls)",
        config.seed
    );
    let report = chaos::run(&config)
        .await
        .expect("the chaos run is set up and torn down");
    println!("{}", report.summary());
    for f in report.failed() {
        println!("  Failed: {} ({}): {}", f.request, f.size, f.reason);
    }
    for m in &report.missing {
        println!(
            "  {}: at most {} pod(s) missing at once ({} pod events)",
            m.db, m.max_missing, m.pod_events
        );
    }
    assert!(
        report.violations.is_empty(),
        "seed {}: {:#?}",
        report.seed,
        report.violations
    );
}
