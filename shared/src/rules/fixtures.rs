//! Builders for rule tests: a Redis cluster `rd` in namespace `demo` with 1Gi PVCs on an
//! expandable class, and a request to grow it.

use crate::facts::PvcOwner;
use std::collections::BTreeMap;

use crate::{
    api::VolumeExpansionMode,
    descriptor::{DatabaseKind, Topology},
    facts::{DatabaseView, Facts, OpsRequestView, PvcView, QuotaView, Shared, StorageClassView},
};

pub fn request(size: &str) -> OpsRequestView {
    OpsRequestView {
        namespace: "demo".into(),
        name: "grow".into(),
        type_: Some("VolumeExpansion".into()),
        database: Some("rd".into()),
        mode: Some(Ok(VolumeExpansionMode::Online)),
        size: Some(size.into()),
        phase: None,
        created: Some("2026-01-01T00:00:10Z".into()),
    }
}

pub fn pvc(name: &str, db: &str, size: &str) -> PvcView {
    PvcView {
        name: name.into(),
        owner: PvcOwner::of_labels(&DatabaseKind::Redis.selector_labels(db)),
        storage_class: Some("fast".into()),
        request: Some(size.into()),
        capacity: Some(size.into()),
        allocated: None,
        phase: Some("Bound".into()),
        resize: None,
    }
}

/// Redis cluster `rd` (2 shards x 2) at 1Gi, asked to grow to `size`.
pub fn facts(size: &str) -> Facts {
    let mut f = Facts::new(DatabaseKind::Redis, request(size));
    f.database = Some(DatabaseView {
        namespace: "demo".into(),
        name: "rd".into(),
        storage_type: Some("Durable".into()),
        has_storage: true,
        storage_request: Some("1Gi".into()),
        storage_class: Some("fast".into()),
        phase: Some("Ready".into()),
        topology: Topology::RedisCluster {
            shards: 2,
            replicas: 2,
        },
    });
    f.namespace_pvcs = [
        "data-rd-shard0-0",
        "data-rd-shard0-1",
        "data-rd-shard1-0",
        "data-rd-shard1-1",
    ]
    .iter()
    .map(|n| pvc(n, "rd", "1Gi"))
    .collect();
    f.storage_classes = Shared::from(vec![
        StorageClassView {
            name: "fast".into(),
            allow_expansion: true,
            is_default: false,
        },
        StorageClassView {
            name: "fixed".into(),
            allow_expansion: false,
            is_default: true,
        },
    ]);
    f.namespace_labels = BTreeMap::from([("tenant".into(), "a".into())]);
    f
}

pub fn quota(name: &str, hard: &[(&str, &str)]) -> QuotaView {
    QuotaView {
        name: name.into(),
        hard: hard.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}
