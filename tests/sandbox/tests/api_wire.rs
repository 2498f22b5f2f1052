//! kube's wire formats: protobuf request bodies for built-in kinds (built here with the k8s-pb
//! crate's prost types, an encoder independent of the sandbox's), protobuf answers when a client
//! takes nothing else (objects, lists, Status errors, watch frames), and kube-apiserver's 415 and
//! 406 for media types no serializer handles (custom resources have no protobuf form).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{raw_client, start};
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use kube::api::{Api, PostParams};
use prost::Message;
use serde_json::{Value, json};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// kube's envelope: `k8s\0` + runtime.Unknown{typeMeta, raw}.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// The object inside an envelope.
fn unwrap_envelope(bytes: &[u8]) -> (String, String, Vec<u8>) {
    assert_eq!(&bytes[..4], b"k8s\0", "protobuf magic");
    let u = Unknown::decode(&bytes[4..]).unwrap();
    let tm = u.type_meta.unwrap();
    (tm.api_version.unwrap(), tm.kind.unwrap(), u.raw.unwrap())
}

/// A ConfigMap as Go's marshaller writes it: every non-pointer ObjectMeta field, zero or not.
fn pb_config_map(name: &str) -> pb::ConfigMap {
    pb::ConfigMap {
        metadata: Some(pbmeta::ObjectMeta {
            name: Some(name.into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            self_link: Some(String::new()),
            uid: Some(String::new()),
            resource_version: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(pbmeta::Time {
                seconds: Some(0),
                nanos: Some(0),
            }),
            labels: BTreeMap::from([("app".into(), "wire".into())]),
            ..Default::default()
        }),
        data: BTreeMap::from([("greeting".into(), "hello".into())]),
        binary_data: BTreeMap::from([("blob".into(), vec![0u8, 1, 2, 255])]),
        immutable: None,
    }
}

#[tokio::test]
async fn protobuf_bodies_are_stored_as_the_json_api_stores_them() {
    let (sb, client) = start().await;
    let http = raw_client(&sb);
    let body = envelope("v1", "ConfigMap", pb_config_map("from-pb").encode_to_vec());
    let resp = http
        .post(format!("{}/api/v1/namespaces/default/configmaps", sb.url()))
        .header("Content-Type", PROTOBUF)
        .header("Accept", format!("{PROTOBUF},application/json"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["data"], json!({"greeting": "hello"}));
    assert_eq!(created["binaryData"], json!({"blob": "AAEC/w=="}));
    assert_eq!(created["metadata"]["labels"], json!({"app": "wire"}));
    for absent in ["generateName", "selfLink"] {
        assert!(created["metadata"].get(absent).is_none(), "{absent}: {created}");
    }
    // What kube-rs reads back is the same object.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "default");
    let read = cms.get("from-pb").await.unwrap();
    assert_eq!(read.data.unwrap()["greeting"], "hello");
    assert_eq!(read.binary_data.unwrap()["blob"].0, vec![0u8, 1, 2, 255]);

    // A Secret (bytes map) and a Namespace (cluster-scoped) too.
    let secret = pb::Secret {
        metadata: Some(pbmeta::ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        }),
        data: BTreeMap::from([("password".into(), b"p4ss".to_vec())]),
        r#type: Some("Opaque".into()),
        ..Default::default()
    };
    let resp = http
        .post(format!("{}/api/v1/namespaces/default/secrets", sb.url()))
        .header("Content-Type", PROTOBUF)
        .body(envelope("v1", "Secret", secret.encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let s: Value = resp.json().await.unwrap();
    assert_eq!(s["data"]["password"], "cDRzcw==");
    let ns = pb::Namespace {
        metadata: Some(pbmeta::ObjectMeta {
            name: Some("pb-ns".into()),
            ..Default::default()
        }),
        spec: Some(pb::NamespaceSpec::default()),
        status: Some(pb::NamespaceStatus::default()),
    };
    let resp = http
        .post(format!("{}/api/v1/namespaces", sb.url()))
        .header("Content-Type", PROTOBUF)
        .body(envelope("v1", "Namespace", ns.encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let n: Value = resp.json().await.unwrap();
    assert_eq!(n["status"]["phase"], "Active");

    // The envelope's kind must match a known kind; garbage is a 400 BadRequest.
    let resp = http
        .post(format!("{}/api/v1/namespaces/default/configmaps", sb.url()))
        .header("Content-Type", PROTOBUF)
        .body(b"{\"not\": \"protobuf\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn protobuf_is_answered_only_to_clients_that_take_nothing_else() {
    let (sb, client) = start().await;
    let http = raw_client(&sb);
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &common::cm("c1"))
        .await
        .unwrap();
    let url = format!("{}/api/v1/namespaces/default/configmaps", sb.url());

    let resp = http
        .get(format!("{url}/c1"))
        .header("Accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], PROTOBUF);
    let (av, kind, raw) = unwrap_envelope(&resp.bytes().await.unwrap());
    assert_eq!((av.as_str(), kind.as_str()), ("v1", "ConfigMap"));
    let got = pb::ConfigMap::decode(raw.as_slice()).unwrap();
    assert_eq!(got.data["k"], "v");
    let meta = got.metadata.unwrap();
    assert_eq!(meta.name.as_deref(), Some("c1"));
    assert!(meta.creation_timestamp.unwrap().seconds.unwrap() > 1_600_000_000);

    let resp = http.get(&url).header("Accept", PROTOBUF).send().await.unwrap();
    let (_, kind, raw) = unwrap_envelope(&resp.bytes().await.unwrap());
    assert_eq!(kind, "ConfigMapList");
    let list = pb::ConfigMapList::decode(raw.as_slice()).unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.unwrap().resource_version.is_some());

    // Errors come back as a protobuf Status.
    let resp = http
        .get(format!("{url}/missing"))
        .header("Accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (_, kind, raw) = unwrap_envelope(&resp.bytes().await.unwrap());
    assert_eq!(kind, "Status");
    let st = pbmeta::Status::decode(raw.as_slice()).unwrap();
    assert_eq!(st.reason.as_deref(), Some("NotFound"));
    assert_eq!(st.code, Some(404));
    assert_eq!(st.message.as_deref(), Some("configmaps \"missing\" not found"));

    // kubectl offers both: JSON it is.
    let resp = http
        .get(format!("{url}/c1"))
        .header("Accept", format!("{PROTOBUF},application/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");

    // A protobuf watch: length-prefixed WatchEvents whose object is an enveloped ConfigMap.
    let mut resp = http
        .get(format!("{url}?watch=true&timeoutSeconds=5"))
        .header("Accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut buf = vec![];
    while buf.len() < 4 || buf.len() < 4 + u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize {
        buf.extend(resp.chunk().await.unwrap().expect("a watch frame"));
    }
    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
    let ev = pbmeta::WatchEvent::decode(&buf[4..4 + len]).unwrap();
    assert_eq!(ev.r#type.as_deref(), Some("ADDED"));
    let (_, kind, raw) = unwrap_envelope(&ev.object.unwrap().raw.unwrap());
    assert_eq!(kind, "ConfigMap");
    assert_eq!(
        pb::ConfigMap::decode(raw.as_slice())
            .unwrap()
            .metadata
            .unwrap()
            .name
            .as_deref(),
        Some("c1")
    );
}

fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

/// (code, reason, message) of a JSON Status reply.
async fn status_of(resp: reqwest::Response) -> (u16, String, String) {
    let code = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["code"], code);
    (
        code,
        v["reason"].as_str().unwrap().to_owned(),
        v["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn unsupported_media_types_are_415_and_unacceptable_ones_406() {
    let (sb, client) = start().await;
    let http = raw_client(&sb);
    let crds: Api<kube::core::DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::erase::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(&()),
    );
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(widget_crd()).unwrap(),
    )
    .await
    .unwrap();
    let cms = format!("{}/api/v1/namespaces/default/configmaps", sb.url());
    let widgets = format!("{}/apis/example.com/v1/namespaces/default/widgets", sb.url());

    let resp = http
        .post(&cms)
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_of(resp).await,
        (
            415,
            "UnsupportedMediaType".into(),
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf".into()
        )
    );
    // kube cannot decode protobuf for custom resources.
    let resp = http
        .post(&widgets)
        .header("Content-Type", PROTOBUF)
        .body(envelope("example.com/v1", "Widget", vec![]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_of(resp).await,
        (
            415,
            "UnsupportedMediaType".into(),
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".into()
        )
    );
    // Patches have their own media types.
    let resp = http
        .patch(format!("{cms}/anything"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_of(resp).await,
        (
            415,
            "UnsupportedMediaType".into(),
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml".into()
        )
    );
    let resp = http.get(&cms).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(
        status_of(resp).await,
        (
            406,
            "NotAcceptable".into(),
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".into()
        )
    );
    let resp = http
        .get(&widgets)
        .header("Accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_of(resp).await,
        (
            406,
            "NotAcceptable".into(),
            "only the following media types are accepted: application/json, application/yaml".into()
        )
    );
    // YAML is served when asked for.
    let resp = http
        .get(&cms)
        .header("Accept", "application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/yaml");
    let list: Value = serde_yaml::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
}
