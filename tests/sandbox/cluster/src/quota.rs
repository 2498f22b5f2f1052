//! ResourceQuota status for storage: `requests.storage`, `persistentvolumeclaims` and the
//! per-class `<class>.storageclass.storage.k8s.io/{requests.storage,persistentvolumeclaims}`,
//! each counted as max(spec request, status.allocatedResources) like kube-controller-manager.
//! Other hard keys are reported in `status.hard` but get no `used` entry.

use crate::error::{Context, Error, ignore_codes};
use crate::pause::PauseSwitch;
use crate::quantity;
use crate::runtime::{Change, Informer, Key, Queue, spawn_workers};
use crate::storage::{allocated, request};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ResourceQuota};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

const CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// Storage usage of the claims of one namespace, by quota key.
pub fn usage<'a>(claims: impl IntoIterator<Item = &'a PersistentVolumeClaim>) -> BTreeMap<String, i128> {
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    for pvc in claims {
        let size = request(pvc).unwrap_or(0).max(allocated(pvc).unwrap_or(0));
        *used.entry("requests.storage".into()).or_default() += size;
        *used.entry("persistentvolumeclaims".into()).or_default() += 1;
        if let Some(class) = pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()) {
            *used
                .entry(format!("{class}{CLASS_SUFFIX}requests.storage"))
                .or_default() += size;
            *used
                .entry(format!("{class}{CLASS_SUFFIX}persistentvolumeclaims"))
                .or_default() += 1;
        }
    }
    used
}

fn is_count(key: &str) -> bool {
    key.ends_with("persistentvolumeclaims")
}

fn is_storage_key(key: &str) -> bool {
    key == "requests.storage"
        || key == "persistentvolumeclaims"
        || key == "count/persistentvolumeclaims"
        || key.contains(CLASS_SUFFIX)
}

struct Ctx {
    client: kube::Client,
    quotas: Store<ResourceQuota>,
    pvcs: Store<PersistentVolumeClaim>,
}

/// Hooks the quota status controller into the informers.
pub fn start(
    client: kube::Client,
    quotas: &mut Informer<ResourceQuota>,
    pvcs: &mut Informer<PersistentVolumeClaim>,
    pause: PauseSwitch,
    tasks: &mut JoinSet<()>,
) {
    let queue = Queue::default();
    let q = queue.clone();
    quotas.on(move |c| {
        if let Change::Applied(rq) = c {
            q.add(Key::of(rq));
        }
    });
    let (q, quota_store) = (queue.clone(), quotas.store());
    pvcs.on(move |c| {
        let (Change::Applied(p) | Change::Deleted(p)) = c;
        let ns = p.namespace();
        quota_store
            .state()
            .iter()
            .filter(|rq| rq.namespace() == ns)
            .for_each(|rq| q.add(Key::of(rq.as_ref())));
    });
    let ctx = Arc::new(Ctx {
        client,
        quotas: quotas.store(),
        pvcs: pvcs.store(),
    });
    spawn_workers(tasks, "resourcequota", queue, 2, pause, move |key| {
        let ctx = ctx.clone();
        async move { reconcile(&ctx, &key).await }
    });
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(rq) = ctx.quotas.get(&ObjectRef::new(&key.name).within(&key.ns)) else {
        return Ok(None);
    };
    let hard = rq.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    let claims: Vec<_> = ctx
        .pvcs
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(key.ns.as_str()))
        .collect();
    let used_all = usage(claims.iter().map(|p| p.as_ref()));
    let mut used = BTreeMap::new();
    for k in hard.keys().filter(|k| is_storage_key(k)) {
        let lookup = k.strip_prefix("count/").unwrap_or(k);
        let v = used_all.get(lookup).copied().unwrap_or(0);
        used.insert(
            k.clone(),
            if is_count(k) {
                v.to_string()
            } else {
                quantity::format(v)
            },
        );
    }
    let have_hard = rq
        .status
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let have_used: BTreeMap<String, String> = rq
        .status
        .as_ref()
        .and_then(|s| s.used.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    if have_hard == hard && have_used == used {
        return Ok(None);
    }
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &key.ns);
    let patch = json!({"status": {"hard": hard, "used": used}});
    ignore_codes(
        api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch))
            .await,
        &[404],
    )
    .ctx(|| format!("updating quota {}", key.name))?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc(class: &str, request: &str, allocated: Option<&str>) -> PersistentVolumeClaim {
        let mut v = json!({
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"storageClassName": class, "resources": {"requests": {"storage": request}}}
        });
        if let Some(a) = allocated {
            v["status"] = json!({"allocatedResources": {"storage": a}});
        }
        serde_json::from_value(v).expect("valid pvc")
    }

    #[test]
    fn usage_counts_max_of_request_and_allocated_per_class() {
        let claims = [
            pvc("fast", "1Gi", None),
            pvc("fast", "1Gi", Some("3Gi")),
            pvc("slow", "2Gi", None),
        ];
        let u = usage(claims.iter());
        let gi = 1i128 << 30;
        assert_eq!(u["requests.storage"], 6 * gi);
        assert_eq!(u["persistentvolumeclaims"], 3);
        assert_eq!(u["fast.storageclass.storage.k8s.io/requests.storage"], 4 * gi);
        assert_eq!(u["fast.storageclass.storage.k8s.io/persistentvolumeclaims"], 2);
        assert_eq!(u["slow.storageclass.storage.k8s.io/requests.storage"], 2 * gi);
    }
}
