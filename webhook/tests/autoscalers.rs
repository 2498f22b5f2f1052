//! Storage autoscalers through `/mutate` and `/validate` (issue 22): KubeDB's docs manifests
//! admitted unchanged, KubeDB's defaults as a patch, the rules' denials and warnings verbatim,
//! and one review over HTTPS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;
mod https;

use std::path::PathBuf;

use base64::Engine;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use volops_shared::facts::{RuleOptions, VolumeExpansionOwner};

/// A KubeDB docs manifest from ../shared/kubedb/docs-examples (required in CI).
fn docs_manifest(file: &str) -> Option<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/kubedb/docs-examples")
        .join(file);
    if !path.is_file() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{} is required in CI",
            path.display()
        );
        eprintln!("SKIPPED: {} is absent", path.display());
        return None;
    }
    Some(serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
}

fn autoscaler(kind: &str, db: &str, storage: Value) -> Value {
    json!({"apiVersion": "autoscaling.kubedb.com/v1alpha1", "kind": kind,
           "metadata": {"name": "as", "namespace": "demo"},
           "spec": {"databaseRef": {"name": db}, "storage": storage}})
}

fn section(extra: Value) -> Value {
    let mut s = json!({"trigger": "On", "expansionMode": "Online"});
    s.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    s
}

fn create(kind: &'static str, obj: Value) -> Review {
    Review::new(kind, "CREATE", Some(obj))
}

async fn mutate(w: &World, review: &Review) -> Value {
    post(&w.router(RuleOptions::default()), "/mutate", review).await
}

/// The decoded JSON patch of a mutate response (empty when none).
fn patch_of(resp: &Value) -> Vec<Value> {
    let Some(b64) = resp["patch"].as_str() else {
        return Vec::new();
    };
    assert_eq!(resp["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn applied(obj: &Value, patch: &[Value]) -> Value {
    let mut out = obj.clone();
    let p: json_patch::Patch = serde_json::from_value(Value::Array(patch.to_vec())).unwrap();
    json_patch::patch(&mut out, &p).unwrap();
    out
}

/// Every field of `a` is in `b` with the same value.
fn kept(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                kept(
                    v,
                    y.get(k).unwrap_or_else(|| panic!("{path}.{k} lost")),
                    &format!("{path}.{k}"),
                );
            }
        }
        _ => assert_eq!(a, b, "{path} changed"),
    }
}

#[tokio::test]
async fn kubedbs_docs_autoscaler_is_admitted_unchanged() {
    let (Some(db), Some(rd_as)) = (
        docs_manifest("redis_autoscaling_storage_rd-standalone.yaml"),
        docs_manifest("redis_autoscaling_storage_rd-as.yaml"),
    ) else {
        return;
    };
    let mut w = World::standard();
    w.redis.push(db);
    let resp = mutate(&w, &create("RedisAutoscaler", rd_as.clone())).await;
    assert_allowed(&resp);
    let patch = patch_of(&resp);
    assert!(patch.iter().all(|op| op["op"] == "add"), "{patch:?}");
    let defaulted = applied(&rd_as, &patch);
    kept(&rd_as, &defaulted, "");
    assert_eq!(
        defaulted["spec"]["opsRequestOptions"],
        json!({"apply": "IfReady", "maxRetries": 1})
    );
    assert_eq!(
        defaulted["spec"]["storage"]["standalone"]["scalingRules"],
        json!([{"appliesUpto": "", "threshold": "50pc"}])
    );
    for obj in [rd_as, defaulted] {
        let resp = validate(&w, &create("RedisAutoscaler", obj)).await;
        assert_allowed(&resp);
        assert!(warnings(&resp).is_empty(), "{resp}");
    }
}

#[tokio::test]
async fn the_storage_section_must_match_the_database() {
    let w = World::standard();
    // `rd` is a Redis cluster.
    let obj = autoscaler("RedisAutoscaler", "rd", json!({"standalone": section(json!({}))}));
    assert_denied(
        &validate(&w, &create("RedisAutoscaler", obj)).await,
        422,
        "spec.storage.standalone is invalid for Redis demo/rd in Cluster mode; use spec.storage.cluster",
    );
    let obj = autoscaler("RedisAutoscaler", "rd", json!({"cluster": section(json!({}))}));
    assert_allowed(&validate(&w, &create("RedisAutoscaler", obj)).await);
    let obj = autoscaler(
        "ZooKeeperAutoscaler",
        "zk",
        json!({"zookeeper": section(json!({}))}),
    );
    assert_allowed(&validate(&w, &create("ZooKeeperAutoscaler", obj)).await);
    let obj = autoscaler("RedisAutoscaler", "gone", json!({"cluster": section(json!({}))}));
    assert_denied(
        &validate(&w, &create("RedisAutoscaler", obj)).await,
        403,
        "Redis demo/gone does not exist: create it before its autoscaler",
    );
    let mut obj = autoscaler("RedisAutoscaler", "", json!({}));
    obj["spec"]["databaseRef"] = json!({});
    assert_denied(
        &validate(&w, &create("RedisAutoscaler", obj)).await,
        422,
        "spec.databaseRef.name is required: name the Redis to scale",
    );
}

#[tokio::test]
async fn bad_thresholds_are_refused_and_a_policy_above_upper_bound_warns() {
    let mut w = World::standard();
    let obj = autoscaler(
        "ZooKeeperAutoscaler",
        "zk",
        json!({"zookeeper": section(json!({"usageThreshold": 150, "scalingRules": [{"appliesUpto": "", "threshold": "big"}]}))}),
    );
    assert_denied(
        &validate(&w, &create("ZooKeeperAutoscaler", obj)).await,
        422,
        "spec.storage.zookeeper.usageThreshold 150 is not a percent from 1 to 100; \
         spec.storage.zookeeper.scalingRules[0]: threshold \"big\" is neither a percent nor a quantity (quantities \
         must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'); write one such as 30pc, \
         20% or 50Gi",
    );
    w.policies.push(json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
                           "metadata": {"name": "tenant-limits"},
                           "spec": {"maxSize": "10Gi", "minExpansionInterval": "6h", "emergencyUsageThreshold": 95}}));
    let obj = autoscaler(
        "ZooKeeperAutoscaler",
        "zk",
        json!({"zookeeper": section(json!({"upperBound": "50Gi"}))}),
    );
    let resp = validate(&w, &create("ZooKeeperAutoscaler", obj)).await;
    assert_allowed(&resp);
    assert_eq!(
        warnings(&resp),
        [
            "spec.storage.zookeeper.upperBound 50Gi is above the maxSize 10Gi of VolumeExpansionPolicy \
          \"tenant-limits\": the autoscaler grows the volumes to 10Gi at most"
        ]
    );
}

#[tokio::test]
async fn updates_status_and_kubedb_owned_autoscalers() {
    let w = World::standard();
    // An UPDATE that leaves the spec (a finalizer removed once the database is gone) passes.
    let old = autoscaler("RedisAutoscaler", "gone", json!({"cluster": section(json!({}))}));
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!([]);
    let mut review = Review::new("RedisAutoscaler", "UPDATE", Some(new.clone()));
    review.old_object = Some(old.clone());
    assert_allowed(&validate(&w, &review).await);
    // A spec change is judged.
    new["spec"]["storage"]["cluster"]["usageThreshold"] = json!(0);
    review.object = Some(new);
    assert_eq!(validate(&w, &review).await["allowed"], false);
    // /status is never judged.
    let mut status = Review::new("RedisAutoscaler", "UPDATE", Some(old.clone()));
    status.sub_resource = Some("status");
    assert_allowed(&validate(&w, &status).await);
    // KubeDB owns them: no defaults, no rules.
    let kubedb = RuleOptions {
        volume_expansion_owner: VolumeExpansionOwner::Kubedb,
        ..RuleOptions::default()
    };
    let review = create("RedisAutoscaler", old);
    let resp = post(&w.router(kubedb.clone()), "/mutate", &review).await;
    assert!(resp.get("patch").is_none(), "{resp}");
    let resp = post(&w.router(kubedb), "/validate", &review).await;
    assert_allowed(&resp);
    assert_eq!(
        warnings(&resp),
        ["volops leaves RedisAutoscaler to KubeDB (--volume-expansion-owner kubedb)"]
    );
}

#[tokio::test]
async fn policy_autoscaler_limits_are_validated() {
    let w = World::standard();
    let policy = |spec: Value| {
        json!({"apiVersion": "volops.dev/v1alpha1", "kind": "VolumeExpansionPolicy",
               "metadata": {"name": "ebs"}, "spec": spec})
    };
    let ok = policy(
        json!({"minExpansionInterval": "1h", "emergencyUsageThreshold": 95,
                           "storageClassIntervals": [{"storageClassName": "gp3", "minExpansionInterval": "6h"}]}),
    );
    assert_allowed(&validate(&w, &Review::new("VolumeExpansionPolicy", "CREATE", Some(ok))).await);
    let bad = policy(
        json!({"storageClassIntervals": [{"storageClassName": "gp3", "minExpansionInterval": "6 hours"}]}),
    );
    assert_denied(
        &validate(&w, &Review::new("VolumeExpansionPolicy", "CREATE", Some(bad))).await,
        422,
        "VolumeExpansionPolicy \"ebs\" cannot be enforced: spec.storageClassIntervals[0].minExpansionInterval: \
         time: invalid duration \"6 hours\"; write it like 5m, 90s or 1h30m",
    );
}

/// Over HTTPS, as the API server calls it: a ZooKeeperAutoscaler gets KubeDB's defaults.
#[tokio::test]
async fn mutate_over_https() {
    let b = https::bundle();
    let vol = https::SecretVolume::new(&b);
    let (running, token) = https::start(&vol).await;
    let stream = https::connect(running.https_addr, https::client_config(&[&b], b"http/1.1"))
        .await
        .unwrap();
    let (mut sender, _conn) = https::h1(stream).await;
    let obj = autoscaler(
        "ZooKeeperAutoscaler",
        "zk",
        json!({"zookeeper": {"expansionMode": "Online"}}),
    );
    let body = serde_json::to_vec(&create("ZooKeeperAutoscaler", obj.clone()).to_json()).unwrap();
    let req = http::Request::post("/mutate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let review: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let response = &review["response"];
    assert_allowed(response);
    let defaulted = applied(&obj, &patch_of(response));
    assert_eq!(
        defaulted["spec"]["storage"]["zookeeper"],
        json!({"expansionMode": "Online", "trigger": "Off", "usageThreshold": 80, "scalingThreshold": 50,
               "scalingRules": [{"appliesUpto": "", "threshold": "50pc"}]})
    );
    token.cancel();
    running.wait().await;
}
