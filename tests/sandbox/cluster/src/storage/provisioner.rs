//! PV provisioner and binder: a PVC whose class has a provisioner gets a PV `pvc-<uid>` with
//! capacity = request and becomes Bound. WaitForFirstConsumer is treated as Immediate.
//! A PV whose claim is gone is deleted (reclaim policy Delete) or marked Released.

use super::{class_of, request_str};
use crate::config::ClusterConfig;
use crate::error::{Context, Error, ignore_codes};
use crate::pause::PauseSwitch;
use crate::runtime::{Change, Informer, Key, Queue, spawn_workers};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

struct Ctx {
    client: kube::Client,
    pvcs: Store<PersistentVolumeClaim>,
    pvs: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    delay: Duration,
    first_seen: Mutex<HashMap<String, Instant>>,
}

/// Hooks the provisioner into the informers.
pub fn start(
    client: kube::Client,
    config: &ClusterConfig,
    pvcs: &mut Informer<PersistentVolumeClaim>,
    pvs: &mut Informer<PersistentVolume>,
    classes: &mut Informer<StorageClass>,
    pause: PauseSwitch,
    tasks: &mut JoinSet<()>,
) {
    let claims = Queue::default();
    let volumes = Queue::default();
    let (cq, vq) = (claims.clone(), volumes.clone());
    pvcs.on(move |c| match c {
        Change::Applied(p) => cq.add(Key::of(p)),
        Change::Deleted(p) => {
            if let Some(v) = p.spec.as_ref().and_then(|s| s.volume_name.as_deref()) {
                vq.add(Key::new("", v));
            }
        }
    });
    let vq = volumes.clone();
    pvs.on(move |c| {
        if let Change::Applied(v) = c {
            vq.add(Key::of(v));
        }
    });
    // A class created after its claims: look at the pending claims again.
    let (cq, pvc_store) = (claims.clone(), pvcs.store());
    classes.on(move |c| {
        if let Change::Applied(_) = c {
            pvc_store
                .state()
                .iter()
                .filter(|p| p.spec.as_ref().is_some_and(|s| s.volume_name.is_none()))
                .for_each(|p| cq.add(Key::of(p.as_ref())));
        }
    });
    let ctx = Arc::new(Ctx {
        client,
        pvcs: pvcs.store(),
        pvs: pvs.store(),
        classes: classes.store(),
        delay: config.pv_provision_delay,
        first_seen: Mutex::default(),
    });
    let c = ctx.clone();
    spawn_workers(tasks, "pv-provisioner", claims, 4, pause.clone(), move |key| {
        let ctx = c.clone();
        async move { provision(&ctx, &key).await }
    });
    spawn_workers(tasks, "pv-reclaimer", volumes, 2, pause, move |key| {
        let ctx = ctx.clone();
        async move { reclaim(&ctx, &key).await }
    });
}

async fn provision(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(pvc) = ctx.pvcs.get(&ObjectRef::new(&key.name).within(&key.ns)) else {
        return Ok(None);
    };
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    let bound_name = pvc.spec.as_ref().and_then(|s| s.volume_name.clone());
    if pvc.metadata.deletion_timestamp.is_some() || (bound_name.is_some() && phase == Some("Bound")) {
        return Ok(None);
    }
    let Some(class) = class_of(&pvc, &ctx.classes) else {
        return Ok(None);
    };
    if class.provisioner.is_empty() || class.provisioner == "kubernetes.io/no-provisioner" {
        return Ok(None);
    }
    let (Some(uid), Some(size)) = (pvc.uid(), request_str(&pvc)) else {
        return Ok(None);
    };
    let waited = {
        let mut m = ctx
            .first_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.entry(uid.clone()).or_insert_with(Instant::now).elapsed()
    };
    if waited < ctx.delay {
        return Ok(Some(ctx.delay - waited));
    }
    let pv_name = format!("pvc-{uid}");
    let spec = pvc.spec.clone().unwrap_or_default();
    let access_modes = spec
        .access_modes
        .clone()
        .unwrap_or_else(|| vec!["ReadWriteOnce".to_owned()]);
    let pv: PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name,
            "annotations": {"pv.kubernetes.io/provisioned-by": class.provisioner},
            "finalizers": ["kubernetes.io/pv-protection"]
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": access_modes,
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": key.ns,
                         "name": key.name, "uid": uid, "resourceVersion": pvc.resource_version()},
            "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".to_owned()),
            "storageClassName": class.name_any(),
            "volumeMode": spec.volume_mode.clone().unwrap_or_else(|| "Filesystem".to_owned()),
            "csi": {"driver": class.provisioner, "volumeHandle": format!("sandbox-{uid}"), "fsType": "ext4"}
        }
    }))
    .map_err(|e| Error::Malformed {
        what: format!("PV for {}", key.name),
        reason: e.to_string(),
    })?;
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    ignore_codes(pvs.create(&PostParams::default(), &pv).await, &[409])
        .ctx(|| format!("creating PV {pv_name}"))?;
    pvs.patch_status(
        &pv_name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Bound"}})),
    )
    .await
    .ctx(|| format!("binding PV {pv_name}"))?;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &key.ns);
    let meta_patch = json!({
        "metadata": {"annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.beta.kubernetes.io/storage-provisioner": class.provisioner,
            "volume.kubernetes.io/storage-provisioner": class.provisioner
        }},
        "spec": {"volumeName": pv_name}
    });
    api.patch(&key.name, &PatchParams::default(), &Patch::Merge(meta_patch))
        .await
        .ctx(|| format!("binding claim {}", key.name))?;
    let status =
        json!({"status": {"phase": "Bound", "accessModes": access_modes, "capacity": {"storage": size}}});
    api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .ctx(|| format!("marking claim {} Bound", key.name))?;
    ctx.first_seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&uid);
    Ok(None)
}

async fn reclaim(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, Error> {
    let Some(pv) = ctx.pvs.get(&ObjectRef::new(&key.name)) else {
        return Ok(None);
    };
    let Some(claim) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        return Ok(None);
    };
    let (ns, name) = (
        claim.namespace.unwrap_or_default(),
        claim.name.unwrap_or_default(),
    );
    let in_store = ctx.pvcs.get(&ObjectRef::new(&name).within(&ns));
    if in_store.is_some_and(|p| p.uid() == claim.uid) {
        return Ok(None);
    }
    // Confirm with the API before acting on a possibly stale store.
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let live = api
        .get_opt(&name)
        .await
        .ctx(|| format!("looking up claim {name}"))?;
    if live.is_some_and(|p| p.uid() == claim.uid) {
        return Ok(None);
    }
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.clone());
    if policy.as_deref() == Some("Delete") {
        // The pv-protection finalizer is ours to drop once the claim is gone.
        ignore_codes(
            pvs.patch(
                &key.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await,
            &[404],
        )
        .ctx(|| format!("releasing PV {}", key.name))?;
        ignore_codes(pvs.delete(&key.name, &DeleteParams::default()).await, &[404])
            .ctx(|| format!("deleting PV {}", key.name))?;
    } else if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released") {
        pvs.patch_status(
            &key.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Released"}})),
        )
        .await
        .ctx(|| format!("releasing PV {}", key.name))?;
    }
    Ok(None)
}
