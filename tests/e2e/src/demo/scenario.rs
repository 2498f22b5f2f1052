//! The scenario itself, on a running [`Harness`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use volops_shared::DatabaseKind;
use volops_shared::descriptor::workloads;
use volops_shared::facts::DatabaseView;

use super::follow::{capacity, follow, pvc_selector};
use super::{Autoscaled, Denial, Expansion, Output, PvcRow, denials, run_autoscale};
use crate::Harness;
use crate::error::{Error, Result, kube_ctx};
use crate::wait::{wait_for, wait_ready};

const NS: &str = "demo";
const REDIS: &str = "sample-redis";
const ZK: &str = "zk-quickstart";

/// What the scenario saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub denials: Vec<Denial>,
    pub expansions: Vec<Expansion>,
    /// The storage autoscaler's part.
    pub autoscaled: Autoscaled,
    pub pvcs: Vec<PvcRow>,
}

impl Report {
    /// Every denial seen and every expansion Successful (and there was at least one of each).
    pub fn success(&self) -> bool {
        !self.denials.is_empty()
            && self.denials.iter().all(Denial::seen)
            && !self.expansions.is_empty()
            && self.expansions.iter().all(Expansion::succeeded)
            && self.autoscaled.succeeded()
    }
}

async fn capacities(h: &Harness, db: &str) -> Result<BTreeMap<String, String>> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    let list = pvcs
        .list(&ListParams::default().labels(&pvc_selector(db)))
        .await
        .map_err(kube_ctx(format!("listing the PVCs of {db}")))?;
    Ok(list
        .items
        .iter()
        .map(|p| (p.name_any(), capacity(p).unwrap_or_else(|| "-".into())))
        .collect())
}

/// Waits until every PVC of `db` has its capacity: the simulated kubelet starts pods without
/// waiting for their claims, so a Ready database may still have a claim being bound.
async fn wait_bound(h: &Harness, kind: DatabaseKind, db: &DynamicObject, timeout: Duration) -> Result<()> {
    let json = serde_json::to_value(db).map_err(|source| Error::Json {
        context: "database".into(),
        source,
    })?;
    let view = DatabaseView::from_json(kind, &json);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(h.client(), NS);
    let workloads = workloads(kind, &view.name, &view.topology)
        .map_err(|e| Error::Invalid(format!("database {}: {e}", view.name)))?;
    for workload in workloads {
        for pvc in workload.pvcs() {
            wait_for(&pvcs, &pvc, "PVC bound", timeout, |p| capacity(p).is_some()).await?;
        }
    }
    Ok(())
}

/// Applies `examples` (namespace, storage classes, the Redis cluster, the ZooKeeper), shows
/// the denials, runs both expansions at once, then the storage autoscaler part, and returns
/// what happened. `timeout` bounds
/// each wait.
pub async fn run_scenario(h: &Harness, examples: &Path, out: &Output, timeout: Duration) -> Result<Report> {
    for file in [
        "namespace.yaml",
        "storageclasses.yaml",
        "redis-cluster.yaml",
        "zookeeper.yaml",
    ] {
        for obj in h.apply_file(&examples.join(file)).await? {
            out.line(format!(
                "applied {} {}",
                obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default(),
                obj.name_any()
            ));
        }
    }
    out.line(format!(
        "waiting for Redis {REDIS} (3 shards x 2) and ZooKeeper {ZK} (3)..."
    ));
    let (redis, zookeeper) = (
        h.databases(DatabaseKind::Redis, NS),
        h.databases(DatabaseKind::ZooKeeper, NS),
    );
    let (rd, zk) = tokio::join!(
        wait_ready(&redis, REDIS, timeout),
        wait_ready(&zookeeper, ZK, timeout)
    );
    wait_bound(h, DatabaseKind::Redis, &rd?, timeout).await?;
    wait_bound(h, DatabaseKind::ZooKeeper, &zk?, timeout).await?;
    let before_rd = capacities(h, REDIS).await?;
    let before_zk = capacities(h, ZK).await?;
    out.line(format!(
        "both Ready: {} + {} PVCs bound",
        before_rd.len(),
        before_zk.len()
    ));
    // The webhook decides from its caches; let them catch up with what was just created.
    let wh = h.webhook();
    wh.wait_cache("redis", 1, timeout).await?;
    wh.wait_cache("zookeeper", 1, timeout).await?;
    wh.wait_cache(
        "persistentvolumeclaims",
        before_rd.len() + before_zk.len(),
        timeout,
    )
    .await?;

    let denials = denials::try_shrinks(h, NS, REDIS, "1Gi").await?;
    for d in &denials {
        out.line(format!("invalid: {}", d.what));
        match &d.message {
            Some(m) => out.line(format!("  denied:\n{}", wrap(m, 79, "    "))),
            None => out.line("  NOT denied"),
        }
    }

    let mut started = Vec::new();
    for (file, kind, db, pvcs) in [
        (
            "redis-online-expansion.yaml",
            DatabaseKind::Redis,
            REDIS,
            before_rd.len(),
        ),
        (
            "zookeeper-offline-expansion.yaml",
            DatabaseKind::ZooKeeper,
            ZK,
            before_zk.len(),
        ),
    ] {
        let applied = h.apply_file(&examples.join(file)).await?;
        let req = applied
            .first()
            .ok_or_else(|| Error::Invalid(format!("{file} has no object")))?;
        let target = req
            .data
            .pointer(&format!("/spec/volumeExpansion/{}", kind.size_field()))
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::Invalid(format!("{file}: no target size")))?
            .to_owned();
        let mode = req
            .data
            .pointer("/spec/volumeExpansion/mode")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        out.line(format!(
            "{}: {} {} to {target} ({mode})",
            db,
            kind.ops_kind(),
            req.name_any()
        ));
        started.push((kind, req.name_any(), db, target, pvcs as u64));
    }
    let followers = started
        .iter()
        .map(|(kind, req, db, target, n)| follow(h, out, *kind, NS, req, db, target, *n, timeout));
    let expansions = futures::future::try_join_all(followers).await?;

    let after_rd = capacities(h, REDIS).await?;
    let after_zk = capacities(h, ZK).await?;
    let mut pvcs = Vec::new();
    for (db, before, after) in [(REDIS, &before_rd, &after_rd), (ZK, &before_zk, &after_zk)] {
        for (name, b) in before {
            pvcs.push(PvcRow {
                database: db.to_owned(),
                pvc: name.clone(),
                before: b.clone(),
                after: after.get(name).cloned().unwrap_or_else(|| "missing".into()),
            });
        }
    }
    out.line("storage autoscaling: a Redis whose volume fills up");
    let autoscaled = run_autoscale(h, examples, out, timeout).await?;
    pvcs.extend(autoscaled.pvcs.iter().cloned());
    Ok(Report {
        denials,
        expansions,
        autoscaled,
        pvcs,
    })
}

/// Wraps `text` at `width` columns, every line starting with `indent`.
pub(crate) fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = indent.to_owned();
    let mut col = indent.len();
    for word in text.split_whitespace() {
        if col > indent.len() && col + 1 + word.len() > width {
            out.push('\n');
            out.push_str(indent);
            col = indent.len();
        } else if col > indent.len() {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_lines_within_width() {
        let text = "admission webhook \"opsrequests.validate.volops.dev\" denied the request: desired storage \
                    512Mi must be greater than the current 1Gi";
        let w = wrap(text, 60, "  ");
        assert!(w.lines().count() > 1, "{w}");
        assert!(w.lines().all(|l| l.len() <= 60 && l.starts_with("  ")), "{w}");
        assert_eq!(
            w.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
    }
}
