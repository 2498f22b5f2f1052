//! The kubectl walkthrough in README.md, run line by line against the demo cluster, so the
//! README cannot drift from what works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, time::Duration};

use volops_e2e::{
    Harness,
    demo::{Output, run_scenario},
    repo_root,
};

const START: &str = "<!-- walkthrough";
const END: &str = "<!-- /walkthrough -->";

/// The `kubectl ...` lines between the walkthrough markers of README.md.
fn walkthrough() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find(START).expect("README has the walkthrough marker");
    let end = readme[start..].find(END).expect("README closes the walkthrough") + start;
    let lines: Vec<String> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("kubectl "))
        .map(str::to_owned)
        .collect();
    assert!(lines.len() >= 4, "walkthrough too short: {lines:?}");
    lines
}

fn kubectl() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "kubectl is required when CI=true"
        );
        eprintln!("SKIPPED: kubectl not found on PATH");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_walkthrough_command_works_against_the_demo_cluster() -> volops_e2e::Result<()> {
    let Some(kubectl) = kubectl() else { return Ok(()) };
    let h = Harness::start_default().await?;
    let report = run_scenario(
        &h,
        &repo_root().join("examples"),
        &Output::quiet(),
        Duration::from_secs(60),
    )
    .await?;
    assert!(report.success(), "{report:#?}");
    for line in walkthrough() {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = tokio::process::Command::new(&kubectl)
            .args(&args)
            .env("KUBECONFIG", h.kubeconfig_path())
            .current_dir(repo_root())
            .output()
            .await
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        if line.contains("examples/zookeeper-online-expansion.yaml") {
            // README says this one is denied: the demo already grew the volumes to 2Gi.
            assert!(!out.status.success(), "{line} should be denied:\n{stdout}");
            assert!(
                stderr
                    .contains("denied the request: desired storage 2Gi must be greater than the current 2Gi"),
                "{stderr}"
            );
            continue;
        }
        assert!(out.status.success(), "{line} failed:\n{stderr}");
        assert!(!stdout.trim().is_empty(), "{line} printed nothing");
        if line.contains("get redis,zookeeper") {
            assert!(
                stdout.contains("sample-redis") && stdout.contains("zk-quickstart"),
                "{stdout}"
            );
        }
        if line.contains("get pvc") {
            assert_eq!(
                // 6 Redis Cluster, 3 ZooKeeper, and the autoscaled Redis's.
                stdout.lines().filter(|l| l.contains(" 2Gi ")).count(),
                10,
                "{stdout}"
            );
        }
        if line.contains("describe redisopsrequest") {
            assert!(stdout.contains("Successful"), "{stdout}");
        }
    }
    h.shutdown().await?;
    Ok(())
}
