//! `apply: IfReady` holds a request while its database is not Ready and starts it once the
//! database is Ready again (`apply: Always` is table-tested in `steps::admit`).

mod support;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;
use support::*;
use volops_controller::Metrics;

/// How long a held request is watched to make sure it does not start.
const HOLD: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_ready_waits_for_a_not_ready_database_then_runs() {
    let (sb, client) = sandbox().await;
    setup(&client, "db", "standard", "online").await;
    let redis = database(&client, "db", "Standalone", "rd", "standard").await;
    let cluster = sb.cluster().expect("simulated cluster");
    // Hold the provisioner so the database stays NotReady until we let it go.
    cluster.pause_all(true);
    let not_ready = json!({"status": {"phase": "NotReady"}});
    redis
        .patch_status("rd", &PatchParams::default(), &Patch::Merge(&not_ready))
        .await
        .unwrap();

    let ops = ops_api(&client, "db", "RedisOpsRequest");
    ops.create(
        &PostParams::default(),
        &ops_request("RedisOpsRequest", "held", "rd", "Online", "2Gi", json!({})),
    )
    .await
    .unwrap();
    let metrics = Arc::new(Metrics::default());
    let (stop, task) = start_controller(client.clone(), metrics.clone());
    tokio::time::sleep(HOLD).await;
    let held = ops.get("held").await.unwrap();
    assert_eq!(at(&held, "/spec/apply"), Some("IfReady"));
    assert_ne!(
        at(&held, "/status/phase"),
        Some("Progressing"),
        "{:#?}",
        held.data["status"]
    );
    assert!(
        !has_condition(&held, "VolumeExpansion"),
        "started while NotReady: {:#?}",
        held.data["status"]
    );
    assert!(
        paused_conditions(&redis.get("rd").await.unwrap()).is_empty(),
        "database paused while held"
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "db");
    for pvc in pvcs.list(&ListParams::default()).await.unwrap() {
        let request = pvc
            .spec
            .and_then(|s| s.resources)
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").cloned());
        assert_eq!(
            request.map(|q| q.0).as_deref(),
            Some("1Gi"),
            "a PVC was patched while held"
        );
    }
    // Checked below, after the run, to count under the label the controller writes.
    assert_eq!(expansions(&metrics, "RedisOpsRequest"), 0);

    // The provisioner resumes and reports the database Ready: the request runs to the end.
    cluster.pause_all(false);
    let done = wait_final(&ops, "held").await;
    assert_eq!(
        at(&done, "/status/phase"),
        Some("Successful"),
        "{:#?}",
        done.data["status"]
    );
    assert!(
        expansions(&metrics, "RedisOpsRequest") > 0,
        "the run patched PVCs under the label the held check reads"
    );
    let _ = stop.send(());
    task.await.unwrap();
    sb.shutdown().await.unwrap();
}
