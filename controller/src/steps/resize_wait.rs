//! Cleanup's wait for a claim still in its controller-side resize: a pod this request took
//! down must not come back before it (controller/DESIGN-NOTES.md).

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use serde_json::Value;
use tracing::info;
use volops_shared::facts::PvcView;

use super::Job;
use crate::{
    context::Ctx,
    decide::cleanup_may_wait,
    error::{KubeContext, Result},
    pvc::controller_resize_pending,
};

/// Cleanup: whether a claim of a pod this request took down is still in its controller-side
/// resize, so neither the pod nor its workload (whose controller would create the pod) may
/// come back yet. Put back now, an offline-only driver needs yet another restart to grow the
/// file system, and the claim stays half expanded. Bounded by [`crate::decide::RESIZE_GRACE`].
pub async fn claims_resizing(ctx: &Ctx, job: &Job) -> Result<bool> {
    if !cleanup_may_wait(&job.status.conditions, jiff::Timestamp::now()) {
        return Ok(false);
    }
    let Some(state) = job.saved.as_ref().map(|s| &s.state) else {
        return Ok(false);
    };
    for (pod_name, pod) in &state.pods {
        let Some(saved) = &pod.manifest else { continue };
        if claim_resizing(ctx, job, pod_name, saved).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether a claim of the saved pod `pod_name` is in its controller-side resize.
async fn claim_resizing(ctx: &Ctx, job: &Job, pod_name: &str, saved: &Value) -> Result<bool> {
    for claim in saved_claims(saved) {
        let pvc = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &job.namespace)
            .get_opt(&claim)
            .await
            .during(|| format!("get PVC {claim}"))?;
        if pvc
            .as_ref()
            .map(PvcView::from_pvc)
            .is_some_and(|v| controller_resize_pending(&v))
        {
            info!(request = %job.describe(), pod = pod_name, pvc = %claim,
                "cleanup keeps the pod away until the controller-side resize is done");
            return Ok(true);
        }
    }
    Ok(false)
}

/// The claims a saved pod mounts.
fn saved_claims(saved: &Value) -> Vec<String> {
    saved
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName")?.as_str())
        .map(str::to_owned)
        .collect()
}
