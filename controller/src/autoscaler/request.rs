//! The VolumeExpansion ops request an expansion decision creates: one for the whole database
//! (its workload template follows), named as KubeDB's autoscaler names them
//! (`rdops-<db>-<6 random>`, `zkops-<db>-<6 random>`), owned by the autoscaler.

use std::hash::{BuildHasher, Hasher};

use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use volops_shared::{DatabaseKind, api::autoscaler::autoscaler_kind, autoscale::Expansion};

use super::watch::autoscaler_resource;

/// The letters of Kubernetes' `rand.String` (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Six random letters of [`ALPHABET`] (std's per-process random hasher keys, no extra crate).
fn suffix() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let mut n = hasher.finish();
    (0..6)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
            n /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

/// `rdops-<db>-xxxxxx` or `zkops-<db>-xxxxxx`.
pub fn request_name(kind: DatabaseKind, db: &str) -> String {
    let prefix = match kind {
        DatabaseKind::Redis => "rdops",
        DatabaseKind::ZooKeeper => "zkops",
    };
    format!("{prefix}-{db}-{}", suffix())
}

/// The autoscaler that owns what it creates.
#[derive(Clone, Debug)]
pub struct Owner {
    pub kind: DatabaseKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// The request's object.
pub fn request(owner: &Owner, db: &str, name: &str, e: &Expansion) -> Value {
    let ar = autoscaler_resource(owner.kind);
    let mut spec = json!({
        "type": "VolumeExpansion",
        "databaseRef": {"name": db},
        "volumeExpansion": {"mode": e.mode.as_str(), owner.kind.size_field(): e.size.to_string()},
        "apply": match e.apply {
            volops_shared::api::ApplyPolicy::Always => "Always",
            volops_shared::api::ApplyPolicy::IfReady => "IfReady",
        },
    });
    if let Some(t) = &e.timeout {
        spec["timeout"] = json!(t);
    }
    if let Some(r) = e.max_retries {
        spec["maxRetries"] = json!(r);
    }
    json!({
        "apiVersion": "ops.kubedb.com/v1alpha1",
        "kind": owner.kind.ops_kind(),
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {"app.kubernetes.io/managed-by": "volops", "autoscaling.kubedb.com/autoscaler": owner.name},
            // No blockOwnerDeletion: that would need rights on the autoscaler's finalizers.
            "ownerReferences": [{"apiVersion": ar.api_version, "kind": autoscaler_kind(owner.kind),
                                 "name": owner.name, "uid": owner.uid, "controller": true}],
        },
        "spec": spec,
    })
}

/// Creates the request; its name.
pub async fn create(
    client: &kube::Client,
    owner: &Owner,
    db: &str,
    e: &Expansion,
) -> Result<String, kube::Error> {
    let name = request_name(owner.kind, db);
    let obj: DynamicObject =
        serde_json::from_value(request(owner, db, &name, e)).map_err(kube::Error::SerdeError)?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &owner.namespace, &owner.kind.ops_resource());
    api.create(&PostParams::default(), &obj).await?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use volops_shared::{
        api::{ApplyPolicy, VolumeExpansionMode},
        autoscale::Peak,
    };

    use super::*;

    #[test]
    fn one_request_for_the_database_named_and_owned_as_kubedb_does() {
        let name = request_name(DatabaseKind::ZooKeeper, "zk");
        assert!(
            name.starts_with("zkops-zk-") && name.len() == "zkops-zk-".len() + 6,
            "{name}"
        );
        assert!(
            name["zkops-zk-".len()..].bytes().all(|b| ALPHABET.contains(&b)),
            "{name}"
        );
        let owner = Owner {
            kind: DatabaseKind::ZooKeeper,
            namespace: "demo".into(),
            name: "zk-as".into(),
            uid: "u-1".into(),
        };
        let e = Expansion {
            size: volops_shared::Quantity::from_bytes(2 << 30),
            from_bytes: 1 << 30,
            step: "scalingThreshold 50".into(),
            clamp: None,
            mode: VolumeExpansionMode::Offline,
            apply: ApplyPolicy::Always,
            emergency: true,
            timeout: Some("5m".into()),
            max_retries: Some(1),
            peak: Peak {
                pvc: "zk-data-zk-0".into(),
                used_bytes: 1,
                capacity_bytes: 1,
                percent: 100,
            },
        };
        let r = request(&owner, "zk", &name, &e);
        assert_eq!(r["kind"], "ZooKeeperOpsRequest");
        assert_eq!(
            r["spec"],
            json!({"type": "VolumeExpansion", "databaseRef": {"name": "zk"},
                   "volumeExpansion": {"mode": "Offline", "node": "2Gi"},
                   "apply": "Always", "timeout": "5m", "maxRetries": 1})
        );
        assert_eq!(r["metadata"]["ownerReferences"][0]["kind"], "ZooKeeperAutoscaler");
        assert_eq!(r["metadata"]["ownerReferences"][0]["uid"], "u-1");
    }
}
