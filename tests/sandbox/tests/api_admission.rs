//! Admission: webhooks over HTTPS (mutate, deny, warnings, dryRun, service resolution) and
//! the built-in rules volops meets (PVC shrink, non-expandable class, quota).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{cm, raw_client, start, status, webhook};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, ResourceQuota};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn webhooks_mutate_deny_warn_and_see_dry_run() {
    let (sb, client) = start().await;
    let hook = webhook::start(&["localhost"]).await;
    let (m, v) = webhook::configs(&hook);
    let mapi: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let vapi: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    mapi.create(&PostParams::default(), &serde_json::from_value(m).unwrap())
        .await
        .unwrap();
    vapi.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let c = cms.create(&PostParams::default(), &cm("ok")).await.unwrap();
    assert_eq!(c.metadata.labels.unwrap()["mutated"], "yes");
    assert_eq!(hook.calls(), 2);

    let mut bad = cm("bad");
    bad.data = Some([("deny".to_string(), "1".to_string())].into());
    let (code, reason, msg) = status(cms.create(&PostParams::default(), &bad).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        msg,
        "admission webhook \"deny.volops.test\" denied the request: objects with data.deny are not allowed"
    );
    assert_eq!(status(cms.get("bad").await).0, 404);

    // dryRun runs admission (the hooks are called) and stores nothing.
    let before = hook.calls();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let d = cms.create(&dry, &cm("dry")).await.unwrap();
    assert_eq!(d.metadata.labels.unwrap()["mutated"], "yes");
    assert_eq!(hook.calls(), before + 2);
    assert_eq!(status(cms.get("dry").await).0, 404);

    // Warnings arrive as `Warning: 299 - "..."` headers.
    let http = raw_client(&sb);
    let resp = http
        .post(format!("{}/api/v1/namespaces/default/configmaps", sb.url()))
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "warned"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let warnings: Vec<String> = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        warnings,
        vec!["299 - \"checked by the test webhook\"".to_string()]
    );
    drop(sb);
}

#[tokio::test]
async fn service_references_use_the_resolver() {
    let (sb, client) = start().await;
    let hook = webhook::start(&["hook.volops.svc"]).await;
    let addr = hook.addr;
    sb.set_service_resolver(Arc::new(move |ns, name, port| {
        (ns == "volops" && name == "hook" && port == 8443).then_some(addr)
    }));
    let v = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "svc"},
        "webhooks": [{"name": "deny.volops.test", "clientConfig": {"caBundle": hook.ca_bundle(),
            "service": {"namespace": "volops", "name": "hook", "path": "/validate", "port": 8443}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "sideEffects": "None", "admissionReviewVersions": ["v1"]}]});
    let vapi: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    vapi.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut bad = cm("bad");
    bad.data = Some([("deny".to_string(), "1".to_string())].into());
    let (code, _, msg) = status(cms.create(&PostParams::default(), &bad).await);
    assert_eq!(code, 403, "{msg}");
    cms.create(&PostParams::default(), &cm("fine")).await.unwrap();
    assert_eq!(hook.calls(), 2);
}

fn pvc(name: &str, class: &str, size: &str) -> PersistentVolumeClaim {
    serde_json::from_value(
        json!({"metadata": {"name": name}, "spec": {"storageClassName": class,
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}),
    )
    .unwrap()
}

#[tokio::test]
async fn builtin_pvc_rules_and_quota() {
    let (_sb, client) = start().await;
    let scs: Api<StorageClass> = Api::all(client.clone());
    for (name, expand) in [("grow", true), ("fixed", false)] {
        let sc =
            json!({"metadata": {"name": name}, "provisioner": "sandbox", "allowVolumeExpansion": expand});
        scs.create(&PostParams::default(), &serde_json::from_value(sc).unwrap())
            .await
            .unwrap();
    }
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    pvcs.create(&PostParams::default(), &pvc("a", "grow", "2Gi"))
        .await
        .unwrap();
    pvcs.create(&PostParams::default(), &pvc("b", "fixed", "1Gi"))
        .await
        .unwrap();
    let grow = |size: &str| Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": size}}}}));

    // Growth needs a bound claim; mark them bound as the cluster would.
    for n in ["a", "b"] {
        pvcs.patch_status(
            n,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await
        .unwrap();
        pvcs.patch(
            n,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"volumeName": format!("pv-{n}")}})),
        )
        .await
        .unwrap();
    }
    pvcs.patch("a", &PatchParams::default(), &grow("3Gi"))
        .await
        .unwrap();
    let (code, reason, msg) = status(pvcs.patch("b", &PatchParams::default(), &grow("2Gi")).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"), "{msg}");
    assert!(
        msg.contains("only dynamically provisioned pvc can be resized"),
        "{msg}"
    );

    // Shrinking below the capacity the volume already has is refused.
    pvcs.patch_status(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"capacity": {"storage": "3Gi"}}})),
    )
    .await
    .unwrap();
    let (code, reason, msg) = status(pvcs.patch("a", &PatchParams::default(), &grow("1Gi")).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{msg}");
    assert!(msg.contains("spec.resources.requests.storage"), "{msg}");

    let q = json!({"metadata": {"name": "storage"}, "spec": {"hard": {"requests.storage": "4Gi"}}});
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "default");
    quotas
        .create(&PostParams::default(), &serde_json::from_value(q).unwrap())
        .await
        .unwrap();
    let (code, reason, msg) = status(pvcs.patch("a", &PatchParams::default(), &grow("5Gi")).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"), "{msg}");
    assert!(msg.contains("exceeded quota: storage"), "{msg}");
}
