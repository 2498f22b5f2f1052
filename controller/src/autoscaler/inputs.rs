//! The facts one decision is made on, from the controller's caches: the storage section for
//! the database's mode, the volumes' size (their PVCs' capacity and request), their latest
//! samples, and the policies' limits (`rules::autoscale_limits`).

use std::collections::BTreeMap;

use volops_shared::{
    DatabaseKind, Topology,
    api::{AutoscalerView, StorageAutoscalerSpec},
    autoscale::{CurrentSize, PolicyLimits, VolumeUsage},
    facts::{DatabaseView, PolicyView, PvcView, QuantityText},
    rules::{AutoscaledDatabase, autoscale_limits},
};

use super::usage::UsageMap;

/// The storage section for the database's mode, with its key: a Redis Cluster reads
/// `cluster`; another Redis `standalone` or `sentinel`, whichever is present (the webhook
/// allows only the one of its mode); a ZooKeeper `zookeeper`.
pub fn section<'a>(
    kind: DatabaseKind,
    db: &DatabaseView,
    view: &'a AutoscalerView,
) -> Option<(&'static str, &'a StorageAutoscalerSpec)> {
    let keys: &[&'static str] = match (kind, &db.topology) {
        (DatabaseKind::ZooKeeper, _) => &["zookeeper"],
        (_, Topology::RedisCluster { .. }) => &["cluster"],
        _ => &["standalone", "sentinel"],
    };
    keys.iter().find_map(|k| view.section(k).map(|s| (*k, s)))
}

fn bytes(q: Option<&QuantityText>) -> Option<i128> {
    q?.quantity().map(|q| q.bytes_ceil())
}

/// Whether the driver refused the PVC's resize: its request is what failed, not a resize
/// under way (the Failed request's back-off applies, not a wait for the resize).
fn resize_refused(p: &PvcView) -> bool {
    p.resize_error().is_some() || p.resize_status().is_some_and(|s| s.contains("Infeasible"))
}

/// The largest capacity and request of the database's PVCs (a refused request left out).
pub fn current_size(pvcs: &[PvcView]) -> CurrentSize {
    CurrentSize {
        capacity_bytes: pvcs.iter().filter_map(|p| bytes(p.capacity.as_ref())).max(),
        request_bytes: pvcs
            .iter()
            .filter(|p| !resize_refused(p))
            .filter_map(|p| bytes(p.request.as_ref()))
            .max(),
    }
}

/// The latest sample of each of the PVCs, where the source has one.
pub fn samples(ns: &str, pvcs: &[PvcView], usage: &UsageMap) -> Vec<VolumeUsage> {
    pvcs.iter()
        .filter_map(|p| usage.get(&(ns.to_owned(), p.name.clone())).cloned())
        .collect()
}

/// The policies' limits on this database's expansions.
pub fn limits(
    policies: &[PolicyView],
    namespace_labels: &BTreeMap<String, String>,
    pvcs: &[PvcView],
    current: CurrentSize,
    section: &StorageAutoscalerSpec,
) -> PolicyLimits {
    let mut classes: Vec<&str> = pvcs.iter().filter_map(|p| p.storage_class.as_deref()).collect();
    classes.sort_unstable();
    classes.dedup();
    let db = AutoscaledDatabase {
        namespace_labels,
        classes: &classes,
        current_bytes: current.capacity_bytes.or(current.request_bytes).unwrap_or(0),
        mode: section.expansion_mode.unwrap_or_default(),
    };
    autoscale_limits(policies, &db)
}

/// The fullest sample's used/capacity (0 without samples), for the usage gauge.
pub fn peak_ratio(samples: &[VolumeUsage]) -> f64 {
    samples
        .iter()
        .map(|s| s.used_bytes as f64 / (s.capacity_bytes.max(1) as f64))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc(capacity: &str, request: &str, refused: bool) -> PvcView {
        let mut p = PvcView {
            capacity: Some(QuantityText::new(capacity.into())),
            request: Some(QuantityText::new(request.into())),
            ..PvcView::default()
        };
        if refused {
            p.resize_mut().status = Some("ControllerResizeInfeasible".into());
        }
        p
    }

    #[test]
    fn a_refused_resize_is_not_a_resize_under_way() {
        let growing = current_size(&[pvc("1Gi", "2Gi", false), pvc("1Gi", "1Gi", false)]);
        assert_eq!(
            (growing.capacity_bytes, growing.request_bytes),
            (Some(1 << 30), Some(2 << 30))
        );
        let refused = current_size(&[pvc("1Gi", "2Gi", true), pvc("1Gi", "1Gi", false)]);
        assert_eq!(refused.request_bytes, Some(1 << 30));
    }
}
