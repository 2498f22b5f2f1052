//! The demo scenario (what `volops-demo --once` runs) end to end, without the binary.

use std::time::{Duration, Instant};

use volops_e2e::demo::{Output, run_scenario};
use volops_e2e::{Harness, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_scenario_succeeds_and_sees_every_denial() -> volops_e2e::Result<()> {
    let started = Instant::now();
    let h = Harness::start_default().await?;
    let report = run_scenario(
        &h,
        &repo_root().join("examples"),
        &Output::plain(),
        Duration::from_secs(60),
    )
    .await?;
    assert!(report.success(), "{report:#?}");
    assert_eq!(report.denials.len(), 2);
    for d in &report.denials {
        assert!(d.seen(), "{d:#?}");
    }
    let names: Vec<_> = report
        .expansions
        .iter()
        .map(|e| (e.database.as_str(), e.phase.as_str()))
        .collect();
    assert_eq!(
        names,
        [("sample-redis", "Successful"), ("zk-quickstart", "Successful")]
    );
    // One request of the autoscaler, Successful, then below the threshold.
    assert!(report.autoscaled.succeeded(), "{:#?}", report.autoscaled);
    assert!(report.autoscaled.requests[0].starts_with("rdops-redis-standalone-"));
    // 3 shards x 2 Redis PVCs and 3 ZooKeeper PVCs, each from 1Gi to the requests' 2Gi, and
    // the autoscaled Redis's PVC from 1Gi to 2Gi (1Gi + 50%, rounded up to a whole GiB).
    assert_eq!(report.pvcs.len(), 10, "{:#?}", report.pvcs);
    for row in &report.pvcs {
        assert_eq!(
            (row.before.as_str(), row.after.as_str()),
            ("1Gi", "2Gi"),
            "{row:?}"
        );
    }
    h.shutdown().await?;
    println!("demo scenario: {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
