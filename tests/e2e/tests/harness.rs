//! The harness's controller control: nothing happens without a controller, a kill mid-way
//! leaves the request unfinished, a restart finishes it.

use volops_e2e::wait::{at, is_final, wait_final, wait_for, wait_ready};
use volops_e2e::{Harness, HarnessOptions, Result, repo_root};
use volops_shared::DatabaseKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_controller_resumes_the_request_after_a_restart() -> Result<()> {
    let mut h = Harness::start(HarnessOptions {
        start_controller: false,
        ..HarnessOptions::default()
    })
    .await?;
    assert!(!h.controller_running());
    let examples = repo_root().join("examples");
    for f in ["namespace.yaml", "storageclasses.yaml", "zookeeper.yaml"] {
        h.apply_file(&examples.join(f)).await?;
    }
    let zk = h.databases(DatabaseKind::ZooKeeper, "demo");
    wait_ready(&zk, "zk-quickstart", h.timeout()).await?;
    h.webhook()
        .wait_cache("persistentvolumeclaims", 3, h.timeout())
        .await?;
    let created = h
        .apply_file(&examples.join("zookeeper-offline-expansion.yaml"))
        .await?;
    let name = "zk-offline-volume-expansion";
    assert!(
        created.iter().all(|r| at(r, "/status/phase").is_none()),
        "no controller, no status: {created:?}"
    );

    h.start_controller();
    assert!(h.controller_running());
    let ops = h.ops_requests(DatabaseKind::ZooKeeper, "demo");
    // Offline restarts pods one by one: kill once the first step is recorded.
    wait_for(&ops, name, "the database paused", h.timeout(), |r| {
        r.data
            .pointer("/status/conditions")
            .and_then(|c| c.as_array())
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "PauseDatabase"))
    })
    .await?;
    // Freeze the simulated cluster so the request cannot finish around the kill.
    let cluster = h
        .sandbox()
        .cluster()
        .ok_or_else(|| volops_e2e::Error::Invalid("no cluster".into()))?;
    cluster.pause_all(true);
    h.kill_controller().await;
    assert!(!h.controller_running());
    let now = ops
        .get(name)
        .await
        .map_err(|e| volops_e2e::Error::Invalid(e.to_string()))?;
    assert!(!is_final(&now), "killed before the end: {:#}", now.data["status"]);

    if let Some(c) = h.sandbox().cluster() {
        c.pause_all(false);
    }
    h.start_controller();
    let done = wait_final(&ops, name, h.timeout()).await?;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#}",
        done.data["status"]
    );
    h.stop_controller().await?;
    h.shutdown().await
}
