//! Helpers shared by the cluster_* tests (included with `#[path]`; no tests of its own).
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::wait::await_condition;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::time::Duration;
use volops_sandbox::{Sandbox, SandboxOptions};
use volops_sandbox_cluster::ClusterConfig;

pub const WAIT: Duration = Duration::from_secs(20);

/// A sandbox with the simulated cluster on fast delays.
pub async fn sandbox() -> (Sandbox, kube::Client) {
    sandbox_with(ClusterConfig::fast()).await
}

/// A sandbox with the simulated cluster configured so.
pub async fn sandbox_with(config: ClusterConfig) -> (Sandbox, kube::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sb = Sandbox::start(SandboxOptions {
        cluster: Some(config),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let client = sb.client().await.expect("client");
    (sb, client)
}

pub async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    let _ = api.create(&PostParams::default(), &ns).await;
}

/// A StorageClass with the given resize mode (`online`, `offline`, `fail`).
pub async fn storage_class(client: &kube::Client, name: &str, mode: &str) {
    let api: Api<StorageClass> = Api::all(client.clone());
    let sc: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": name},
        "provisioner": "sandbox.volops.dev/csi",
        "allowVolumeExpansion": true,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "parameters": {
            "sandbox.volops.dev/resize-mode": mode,
            "sandbox.volops.dev/resize-delay-ms": "20"
        }
    }))
    .expect("sc");
    api.create(&PostParams::default(), &sc)
        .await
        .expect("storage class created");
}

/// Minimal Redis (v1) and ZooKeeper (v1alpha2) CRDs: preserve-unknown-fields, status subresource.
pub async fn kubedb_crds(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (plural, kind, version) in [
        ("redises", "Redis", "v1"),
        ("zookeepers", "ZooKeeper", "v1alpha2"),
    ] {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": format!("{plural}.kubedb.com")},
            "spec": {
                "group": "kubedb.com",
                "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
                "versions": [{
                    "name": version, "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }}}
                }]
            }
        }))
        .expect("crd");
        api.create(&PostParams::default(), &crd)
            .await
            .expect("crd created");
    }
}

/// Waits (watch-based) until `cond` holds for the named object.
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let fut = await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond));
    match tokio::time::timeout(WAIT, fut).await {
        Ok(Ok(Some(o))) => o,
        Ok(other) => panic!("waiting for {what}: {other:?}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits until the named object is gone.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let fut = await_condition(api.clone(), name, |o: Option<&K>| o.is_none());
    match tokio::time::timeout(WAIT, fut).await {
        Ok(Ok(_)) => {}
        other => panic!("waiting for {what} to be deleted: {other:?}"),
    }
}

pub fn db_api(client: &kube::Client, ns: &str, redis: bool) -> Api<DynamicObject> {
    let ar = if redis {
        volops_sandbox_cluster::util::redis_ar()
    } else {
        volops_sandbox_cluster::util::zookeeper_ar()
    };
    Api::namespaced_with(client.clone(), ns, &ar)
}

pub fn phase(o: &DynamicObject) -> Option<&str> {
    o.data.pointer("/status/phase").and_then(|v| v.as_str())
}
