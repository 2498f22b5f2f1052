//! `volops-bench scale`: both binaries against a cluster of 10,000 and 100,000 PVCs (the
//! webhook bench's fixture, plus the databases' StatefulSets): time from process start to
//! synced caches, resident memory on an empty cluster, after the sync and after a load, bytes
//! per cached object, and the API requests the sync took (docs/PERFORMANCE.md, "Large
//! clusters").
//!
//! Each binary runs as a child process with a user of its own, so the sandbox's audit log
//! tells its requests apart.

mod controller_run;
mod webhook_run;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use volops_sandbox::{Sandbox, SandboxOptions};

use crate::proc::Memory;
use crate::report::{emit, say};
use crate::webhook::{fixture, populate};

const BENCH: &str = "scale";
/// Issue 24's targets.
pub const TARGET_RSS_MIB: f64 = 128.0;
pub const TARGET_READY_S: f64 = 30.0;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster sizes, in PVCs (each gets a fresh cluster).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pvcs: Vec<usize>,
    /// Seconds of admission load on the webhook after its sync.
    #[arg(long, default_value_t = 3.0)]
    load_seconds: f64,
    /// Ops requests the controller handles after its sync (each denied at Admit: a load
    /// through its caches that needs no resize).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// CI smoke size: 240 PVCs, 0.3 s of load, 5 requests.
    #[arg(long)]
    tiny: bool,
}

/// What one binary measured at one size.
pub struct Measured {
    pub ready: Duration,
    pub empty: Memory,
    pub synced: Memory,
    pub loaded: Memory,
    pub cached_objects: usize,
    pub api_requests: usize,
}

impl Measured {
    fn bytes_per_object(&self) -> f64 {
        (self.synced.rss_mib - self.empty.rss_mib) * 1024.0 * 1024.0 / self.cached_objects.max(1) as f64
    }

    fn passes(&self) -> bool {
        self.synced.rss_mib.max(self.loaded.rss_mib) <= TARGET_RSS_MIB
            && self.ready.as_secs_f64() <= TARGET_READY_S
    }
}

/// The cluster one size runs against, and the users the children run as.
pub struct Cluster {
    pub sandbox: Sandbox,
    pub client: kube::Client,
    pub counts: populate::Counts,
    pub namespaces: usize,
    pub statefulsets: usize,
    kubeconfigs: tempfile::TempDir,
}

impl Cluster {
    /// A kubeconfig for `user` (a cluster admin) and the user's name.
    pub fn kubeconfig(&self, user: &str) -> Result<PathBuf> {
        let path = self.kubeconfigs.path().join(user);
        self.sandbox
            .write_user_kubeconfig(user, &["system:masters"], &path)
            .with_context(|| format!("kubeconfig for {user}"))?;
        Ok(path)
    }

    /// Requests `user` sent, as the audit log kept them.
    pub fn requests_of(&self, user: &str) -> usize {
        self.sandbox
            .audit_events()
            .iter()
            .filter(|e| e.pointer("/user/username").and_then(Value::as_str) == Some(user))
            .count()
    }
}

pub fn kubeconfig_dir() -> Result<tempfile::TempDir> {
    tempfile::tempdir().context("temp dir for kubeconfigs")
}

pub async fn run(mut args: Args) -> Result<()> {
    if args.tiny {
        args.pvcs = vec![240];
        args.load_seconds = 0.3;
        args.requests = 5;
    }
    let mut pass = true;
    for &pvcs in &args.pvcs {
        pass &= one_size(&args, pvcs).await?;
    }
    if !pass {
        say("scale: a target was missed (see above)");
    }
    Ok(())
}

async fn one_size(args: &Args, pvcs: usize) -> Result<bool> {
    let sandbox = Sandbox::start(SandboxOptions {
        // Holds every request a child makes after populating (the oldest go first).
        audit_capacity: 200_000,
        ..SandboxOptions::default()
    })
    .await?;
    let client = sandbox.client().await?;
    populate::cluster_wide(&client).await?;
    let mut cluster = Cluster {
        sandbox,
        client,
        counts: populate::Counts::default(),
        namespaces: 0,
        statefulsets: 0,
        kubeconfigs: kubeconfig_dir()?,
    };
    // Each binary on the empty cluster first: what a cached object adds is measured above it.
    let webhook_empty = webhook_run::empty(&cluster).await?;
    let controller_empty = controller_run::empty(&cluster).await?;

    let started = std::time::Instant::now();
    cluster.namespaces = fixture::namespaces_for_pvcs(pvcs);
    cluster.counts = populate::namespaces(&cluster.client, 0..cluster.namespaces).await?;
    let dbs = fixture::databases(0..cluster.namespaces);
    cluster.statefulsets = workloads::create(&cluster.client, &dbs).await?;
    let mut fields = cluster.counts.to_json();
    fields["statefulsets"] = json!(cluster.statefulsets);
    fields["seconds"] = json!(started.elapsed().as_secs_f64());
    emit(BENCH, "setup", fields);

    let webhook = webhook_run::measure(&cluster, webhook_empty, args.load_seconds).await?;
    let controller = controller_run::measure(&cluster, controller_empty, &dbs, args.requests).await?;
    cluster.sandbox.shutdown().await?;
    let mut pass = true;
    for (name, m) in [("webhook", &webhook), ("controller", &controller)] {
        report(name, cluster.counts.pvcs, m);
        pass &= m.passes();
    }
    Ok(pass)
}

fn report(binary: &str, pvcs: usize, m: &Measured) {
    emit(
        BENCH,
        "binary",
        json!({"binary": binary, "pvcs": pvcs, "ready_s": m.ready.as_secs_f64(),
               "rss_empty_mib": m.empty.rss_mib, "rss_synced_mib": m.synced.rss_mib,
               "rss_loaded_mib": m.loaded.rss_mib, "peak_rss_mib": m.loaded.peak_rss_mib,
               "cached_objects": m.cached_objects, "bytes_per_object": m.bytes_per_object(),
               "api_requests_during_sync": m.api_requests,
               "target_rss_mib": TARGET_RSS_MIB, "target_ready_s": TARGET_READY_S, "pass": m.passes()}),
    );
    say(format!(
        "  {} {binary} at {pvcs} PVCs: ready in {:.1} s ({} API requests), RSS empty {:.1} / synced {:.1} / \
         after load {:.1} MiB (peak {:.1}), {} objects cached, {:.0} bytes each",
        if m.passes() { "PASS" } else { "MISS" },
        m.ready.as_secs_f64(),
        m.api_requests,
        m.empty.rss_mib,
        m.synced.rss_mib,
        m.loaded.rss_mib,
        m.loaded.peak_rss_mib,
        m.cached_objects,
        m.bytes_per_object(),
    ));
}

/// The path as a child argument.
pub fn arg(path: &Path) -> String {
    path.display().to_string()
}
