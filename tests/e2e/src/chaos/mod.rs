//! Chaos: rounds of Redis (standalone, cluster) and ZooKeeper expansions, Online and Offline,
//! while the controller is killed at random moments (seeded), the sandbox fails a share of API
//! requests (500/409/429) and cuts watch streams, and a hostile tenant forges saved state in the
//! requests' annotations (at CREATE and UPDATE) and edits their databases. Used by the
//! `reliability_chaos` test and by `volops-bench chaos` (the same code at volume).
//!
//! Invariants, each a [`ChaosReport::violations`] entry when broken: every request ends
//! Successful, or Failed with the cleanup done (database not paused, every workload and pod
//! back); never a pod missing in Online mode and never more than one pod of a database missing
//! at once in Offline mode (pod watches); no PVC ever requests or reaches more than the largest
//! size asked for its database (PVC watch); the database's `spec.storage` is the size of its
//! last Successful request; no object is ever created from what the tenant wrote (watches: no
//! pod, StatefulSet or PetSet with its image, a hostPath or its names); at the end no request
//! is non-final or keeps a finalizer and no saved state is left; the controller stops
//! gracefully at the end.

mod databases;
mod driver;
mod invariants;
mod tenant;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use volops_sandbox::{FaultConfig, FaultRule};

pub use databases::{Db, NS, databases};
pub use driver::Outcome;
use driver::{Quota, drive};
use invariants::{bytes, left_over, pvcs_past_target, track_pvc_sizes, wait_clean};
use tenant::{TenantCounts, tenant_client, watch_forged_objects};

use crate::error::kube_ctx;
use crate::track::MissingPods;
use crate::wait::wait_ready;
use crate::{Harness, Result, repo_root};

/// How hard a run shakes the system.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// Seeds the kill delays and the fault rolls: the same seed replays the same dice.
    pub seed: u64,
    /// Keep going until at least this many controller kills.
    pub min_kills: usize,
    /// Copies of the six-database set.
    pub copies: usize,
    /// Rounds every database does at least.
    pub min_rounds: usize,
    /// Share of API requests failed per rule (0 turns faults off).
    pub fault_rate: f64,
    /// Watch streams are cut this often (0: never).
    pub watch_cut_seconds: u64,
    /// The controller runs this long (uniform, milliseconds) between kills.
    pub run_ms: std::ops::Range<u64>,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            min_kills: 30,
            copies: 1,
            min_rounds: 2,
            fault_rate: 0.1,
            watch_cut_seconds: 2,
            run_ms: 100..600,
        }
    }
}

/// Pods missing at once, per database.
#[derive(Clone, Debug)]
pub struct Missing {
    pub db: String,
    pub mode: &'static str,
    pub max_missing: usize,
    pub allowed: usize,
    pub pod_events: usize,
}

/// What a run did and every invariant it saw broken.
#[derive(Clone, Debug)]
pub struct ChaosReport {
    pub seed: u64,
    pub databases: usize,
    pub kill_points: usize,
    pub outcomes: Vec<Outcome>,
    pub missing: Vec<Missing>,
    pub pvcs_watched: usize,
    pub api_requests: u64,
    pub reconcile_errors: u64,
    pub graceful_stop: bool,
    pub elapsed: Duration,
    /// Forged saved state the API server took (request CREATEs and UPDATEs).
    pub forged: usize,
    /// Forged writes admission refused.
    pub forged_refused: usize,
    /// Database edits mid-flight.
    pub database_edits: usize,
    /// Broken invariants; empty when the run is clean.
    pub violations: Vec<String>,
}

impl ChaosReport {
    pub fn successful(&self) -> usize {
        self.outcomes.iter().filter(|o| o.phase == "Successful").count()
    }

    pub fn failed(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| o.phase == "Failed").collect()
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "chaos seed {}: {} expansions ({} Successful, {} Failed with cleanup) across {} databases, \
             {} controller kill points, {} forged saved states ({} refused by admission), {} database \
             edits; the controller sent {} API requests and counted {} reconcile errors; graceful stop \
             at the end: {}; {} violation(s); {:.1}s",
            self.seed,
            self.outcomes.len(),
            self.successful(),
            self.failed().len(),
            self.databases,
            self.kill_points,
            self.forged,
            self.forged_refused,
            self.database_edits,
            self.api_requests,
            self.reconcile_errors,
            if self.graceful_stop { "ok" } else { "NO" },
            self.violations.len(),
            self.elapsed.as_secs_f64()
        )
    }
}

fn fault_rules(rate: f64) -> Vec<FaultRule> {
    [
        ("get", 500),
        ("list", 429),
        ("watch", 500),
        ("create", 500),
        ("patch", 409),
        ("update", 409),
        ("delete", 429),
        ("*", 500),
    ]
    .into_iter()
    .map(|(verb, code)| FaultRule {
        verb: verb.into(),
        resource: "*".into(),
        rate,
        code,
        retry_after_seconds: 1,
    })
    .collect()
}

fn reconcile_errors(h: &Harness) -> u64 {
    h.controller_metrics()
        .encode()
        .lines()
        .filter(|l| l.starts_with("volops_controller_reconcile_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Runs one chaos run in a fresh harness. `Err` only when the run could not be set up or torn
/// down; broken invariants are in the report.
pub async fn run(config: &ChaosConfig) -> Result<ChaosReport> {
    let seed = config.seed;
    let started = Instant::now();
    let mut h = Harness::start_default().await?;
    for f in ["namespace.yaml", "storageclasses.yaml"] {
        h.apply_file(&repo_root().join("examples").join(f)).await?;
    }
    h.apply_yaml(databases::FAILING_CLASS).await?;
    let dbs = databases(config.copies);
    for db in &dbs {
        h.apply_yaml(&db.manifest.to_string()).await?;
    }
    for db in &dbs {
        wait_ready(&h.databases(db.kind, NS), &db.name, h.timeout()).await?;
    }
    let client = h.client();
    // Continuous invariants, from watches started while everything is still in place.
    let watches: Vec<(Db, MissingPods)> = dbs
        .iter()
        .map(|db| {
            (
                db.clone(),
                MissingPods::start(client.clone(), NS, &db.selector(), db.pods),
            )
        })
        .collect();
    let (pvc_max, pvc_task) = track_pvc_sizes(client.clone());
    let (forged_seen, forged_watches) = watch_forged_objects(client.clone());
    let tenant = tenant_client(&h).await?;
    let counts = TenantCounts::default();
    let tenant_stop = Arc::new(AtomicBool::new(false));
    let tenant_task = tokio::spawn(tenant::act(
        tenant.clone(),
        dbs.clone(),
        seed,
        counts.clone(),
        tenant_stop.clone(),
    ));
    h.sandbox().faults().set(FaultConfig {
        seed,
        rules: if config.fault_rate > 0.0 {
            fault_rules(config.fault_rate)
        } else {
            Vec::new()
        },
        latency_ms: 0,
        watch_cut_seconds: config.watch_cut_seconds,
    });

    let quota = Quota {
        kills: Arc::new(AtomicUsize::new(0)),
        min_kills: config.min_kills,
        min_rounds: config.min_rounds,
    };
    let drivers: Vec<_> = dbs
        .iter()
        .map(|db| {
            tokio::spawn(drive(
                client.clone(),
                tenant.clone(),
                db.clone(),
                quota.clone(),
                counts.clone(),
            ))
        })
        .collect();
    let all_done = || drivers.iter().all(|d| d.is_finished());
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6b69_6c6c);
    let run_ms = if config.run_ms.is_empty() {
        100..600
    } else {
        config.run_ms.clone()
    };
    while !all_done() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(run_ms.clone()))).await;
        if all_done() {
            break;
        }
        h.kill_controller().await;
        quota.kills.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        h.start_controller();
    }
    let mut violations = Vec::new();
    let mut outcomes = Vec::new();
    for d in drivers {
        match d.await {
            Ok(Ok(o)) => outcomes.extend(o),
            Ok(Err(v)) => violations.push(v),
            Err(e) => violations.push(format!("a driver task failed: {e}")),
        }
    }
    tenant_stop.store(true, Ordering::SeqCst);
    if let Err(e) = tenant_task.await {
        violations.push(format!("the tenant task failed: {e}"));
    }
    h.sandbox().faults().clear();
    let kill_points = quota.kills.load(Ordering::SeqCst);

    // Final state, faults off.
    for db in &dbs {
        if let Err(e) = wait_clean(&client, db, Instant::now() + Duration::from_secs(30)).await {
            violations.push(format!("at the end: {e}"));
        }
    }
    let missing: Vec<Missing> = watches
        .iter()
        .map(|(db, m)| Missing {
            db: db.name.clone(),
            mode: db.mode,
            max_missing: m.max_missing(),
            allowed: db.allowed_missing(),
            pod_events: m.events(),
        })
        .collect();
    for m in &missing {
        if m.max_missing > m.allowed {
            violations.push(format!(
                "{} ({}) had {} pods missing at once",
                m.db, m.mode, m.max_missing
            ));
        }
    }
    drop(watches);
    pvc_task.abort();
    // Nothing the tenant wrote was ever created; nothing is left over.
    for w in forged_watches {
        w.abort();
    }
    let forged = forged_seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for o in forged {
        violations.push(format!("{o} was created from what the tenant wrote"));
    }
    violations.extend(left_over(&client, Instant::now() + Duration::from_secs(30)).await);
    let targets: BTreeMap<String, i128> = dbs
        .iter()
        .map(|db| {
            let max = outcomes
                .iter()
                .filter(|o| o.db == db.name)
                .map(|o| bytes(&o.size))
                .max()
                .unwrap_or(0);
            (db.name.clone(), max)
        })
        .collect();
    let seen = pvc_max.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if seen.is_empty() {
        violations.push("the PVC watch saw no PVC".into());
    }
    violations.extend(pvcs_past_target(&seen, &targets));
    // The database's spec.storage is the size of its last Successful request (a Failed one
    // never writes it).
    for db in &dbs {
        let want = outcomes
            .iter()
            .rev()
            .find(|o| o.db == db.name && o.phase == "Successful")
            .map_or("1Gi", |o| o.size.as_str());
        let d = h
            .databases(db.kind, NS)
            .get(&db.name)
            .await
            .map_err(kube_ctx(format!("get database {}", db.name)))?;
        let have = &d.data["spec"]["storage"]["resources"]["requests"]["storage"];
        if have != want {
            violations.push(format!("{}: spec.storage is {have}, want {want}", db.name));
        }
    }
    if kill_points < config.min_kills {
        violations.push(format!(
            "only {kill_points} kill points, want {}",
            config.min_kills
        ));
    }
    if !outcomes.iter().any(|o| o.phase == "Successful") {
        violations.push("no request succeeded".into());
    }
    let api_requests = h.controller_metrics().api_requests_total();
    let reconcile_errors = reconcile_errors(&h);
    // A graceful stop (a pod's SIGTERM) after all those kills. Bounded: a hang is a violation.
    let stop = tokio::time::timeout(Duration::from_secs(20), h.stop_controller()).await;
    let graceful_stop = matches!(stop, Ok(Ok(())));
    if !graceful_stop {
        violations.push(format!(
            "the controller did not stop gracefully within 20 s: {stop:?}"
        ));
    }
    match tokio::time::timeout(Duration::from_secs(60), h.shutdown()).await {
        Ok(r) => r?,
        Err(_) => violations.push("harness shutdown took more than 60 s".into()),
    }
    Ok(ChaosReport {
        seed,
        databases: dbs.len(),
        kill_points,
        outcomes,
        missing,
        pvcs_watched: seen.len(),
        api_requests,
        reconcile_errors,
        graceful_stop,
        elapsed: started.elapsed(),
        forged: TenantCounts::get(&counts.forged),
        forged_refused: TenantCounts::get(&counts.refused),
        database_edits: TenantCounts::get(&counts.database_edits),
        violations,
    })
}
