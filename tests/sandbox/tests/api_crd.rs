//! CRDs: serving (versions, scope, status, names), schema defaults/pruning/validation,
//! discovery, and Table output with additionalPrinterColumns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{raw_client, start, status};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{ApiResource, Discovery};
use serde_json::{Value, json};

pub fn widget_crd() -> Value {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "string"},
            "mode": {"type": "string", "enum": ["Online", "Offline"], "default": "Online"},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}});
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                "shortNames": ["wd"], "categories": ["all"]},
            "versions": [version("v1", true), version("v1beta1", false)]}})
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

#[tokio::test]
async fn crd_serves_validates_defaults_and_prunes() {
    let (sb, client) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .create(
            &PostParams::default(),
            &serde_json::from_value(widget_crd()).unwrap(),
        )
        .await
        .unwrap();
    let conds = crd.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "NamesAccepted" && c.status == "True")
    );

    // Discovery lists it with names, scope and the status subresource.
    let disc = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = disc
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("widget discovered");
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural.ends_with("status")),
        "{:?}",
        caps.subresources
    );

    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let w: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let created = w
        .create(
            &PostParams::default(),
            &widget("a", json!({"size": "1Gi", "unknown": 1, "extra": {"kept": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["mode"], "Online", "default applied");
    assert!(
        created.data["spec"].get("unknown").is_none(),
        "unknown field pruned"
    );
    assert_eq!(created.data["spec"]["extra"]["kept"], 1, "preserved subtree kept");

    let (code, reason, msg) = status(w.create(&PostParams::default(), &widget("b", json!({}))).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(msg.starts_with("Widget.example.com \"b\" is invalid"), "{msg}");
    assert!(msg.contains("spec.size: Required value"), "{msg}");
    let (code, _, msg) = status(
        w.create(
            &PostParams::default(),
            &widget("c", json!({"size": "1", "mode": "Sideways"})),
        )
        .await,
    );
    assert_eq!(code, 422);
    assert!(msg.contains("Unsupported value: \"Sideways\""), "{msg}");

    // Status subresource: generation moves with spec only.
    let s = w
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, Some(1));
    let s = w
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": "2Gi"}})),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, Some(2));
    assert_eq!(s.data["status"]["phase"], "Ready");

    // The other served version returns the same object under its apiVersion.
    let beta = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1beta1", "Widget"));
    let wb: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &beta);
    let got = wb.get("a").await.unwrap();
    assert_eq!(got.types.unwrap().api_version, "example.com/v1beta1");

    // Strategic merge patch is not for custom resources.
    let (code, reason, _) = status(
        w.patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": "3Gi"}})),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));

    // Table output with the printer columns.
    let http = raw_client(&sb);
    let table: Value = http
        .get(format!(
            "{}/apis/example.com/v1/namespaces/default/widgets",
            sb.url()
        ))
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(table["kind"], "Table");
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, vec!["Name", "Size", "Phase", "Age"]);
    assert_eq!(table["rows"][0]["cells"][0], "a");
    assert_eq!(table["rows"][0]["cells"][1], "2Gi");
    assert_eq!(table["rows"][0]["cells"][2], "Ready");

    // Deleting the CRD stops serving the resource.
    crds.delete("widgets.example.com", &Default::default())
        .await
        .unwrap();
    let (code, _, _) = status(w.get("a").await);
    assert_eq!(code, 404);
}

#[tokio::test]
async fn builtin_tables_have_kube_columns() {
    let (sb, client) = start().await;
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(client, "default");
    let pvc = json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv-1"}});
    pvcs.create(&PostParams::default(), &serde_json::from_value(pvc).unwrap())
        .await
        .unwrap();
    let http = raw_client(&sb);
    let get = |path: &str| {
        http.get(format!("{}{path}", sb.url()))
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .send()
    };
    let t: Value = get("/api/v1/namespaces/default/persistentvolumeclaims")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec![
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "Age"
        ]
    );
    assert_eq!(t["rows"][0]["cells"][1], "Pending");
    assert_eq!(t["rows"][0]["cells"][2], "pv-1");
    let t: Value = get("/api/v1/namespaces/default/pods")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, vec!["Name", "Ready", "Status", "Restarts", "Age"]);
}
