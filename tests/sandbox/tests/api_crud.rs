//! Create/get/update/patch/delete through kube::Client, with kube-apiserver's codes and reasons.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cm, start, status};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use serde_json::json;

#[tokio::test]
async fn create_get_update_conflict_and_metadata() {
    let (sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_ref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.clone().unwrap().parse().unwrap();

    let (code, reason, msg) = status(cms.create(&PostParams::default(), &cm("a")).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(msg, r#"configmaps "a" already exists"#);

    let (code, reason, msg) = status(cms.get("missing").await);
    assert_eq!(
        (code, reason.as_str(), msg.as_str()),
        (404, "NotFound", r#"configmaps "missing" not found"#)
    );

    let mut upd = created.clone();
    upd.data = Some([("k".to_string(), "w".to_string())].into());
    let updated = cms.replace("a", &PostParams::default(), &upd).await.unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);
    assert_eq!(updated.metadata.uid, created.metadata.uid);

    // The stale object (old resourceVersion) is refused.
    let (code, reason, msg) = status(cms.replace("a", &PostParams::default(), &upd).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(msg.contains("the object has been modified"), "{msg}");

    // generateName
    let generated: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let g = cms.create(&PostParams::default(), &generated).await.unwrap();
    let name = g.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    // Namespace must exist.
    let nope: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let (code, reason, msg) = status(nope.create(&PostParams::default(), &cm("a")).await);
    assert_eq!(
        (code, reason.as_str(), msg.as_str()),
        (404, "NotFound", r#"namespaces "nope" not found"#)
    );

    // dryRun stores nothing.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &cm("dry")).await.unwrap();
    assert_eq!(status(cms.get("dry").await).0, 404);
    sb.shutdown().await.unwrap();
}

fn sts(name: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1, "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        },
        "status": {"replicas": 5}
    }))
    .unwrap()
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let (_sb, client) = start().await;
    let api: Api<StatefulSet> = Api::namespaced(client, "default");
    let s = api.create(&PostParams::default(), &sts("db")).await.unwrap();
    assert_eq!(s.metadata.generation, Some(1));
    // Status is dropped on create.
    assert_eq!(s.status.as_ref().map(|st| st.replicas).unwrap_or(0), 0);

    // Status through /status does not bump generation; through the main resource it is ignored.
    let st = api
        .patch_status(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(st.status.unwrap().replicas, 3);
    assert_eq!(st.metadata.generation, Some(1));
    let m = api
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(m.status.unwrap().replicas, 3);
    assert_eq!(m.metadata.generation, Some(1));

    // A spec change bumps generation; /status ignores spec.
    let m = api
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(m.metadata.generation, Some(2));
    let st = api
        .patch_status(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(st.spec.unwrap().replicas, Some(2));

    // volumeClaimTemplates are immutable (built-in admission).
    let (code, reason, msg) = status(
        api.patch(
            "db",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([{"op": "replace",
                    "path": "/spec/volumeClaimTemplates/0/spec/resources/requests/storage", "value": "2Gi"}]))
                .unwrap(),
            ),
        )
        .await,
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{msg}");
    assert!(
        msg.contains("updates to statefulset spec for fields other than"),
        "{msg}"
    );
}

#[tokio::test]
async fn patch_kinds() {
    let (_sb, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // Strategic merge: containers merge by name.
    let p = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}})),
        )
        .await
        .unwrap();
    let cs = p.spec.unwrap().containers;
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[1].image.as_deref(), Some("b:2"));
    // Merge patch replaces lists.
    let p = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.labels.unwrap()["x"], "1");
    // JSON patch with a failing test op.
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/metadata/name", "value": "other"}])).unwrap();
    let (code, _, _) = status(
        pods.patch("p", &PatchParams::default(), &Patch::Json::<()>(bad))
            .await,
    );
    assert_eq!(code, 422);

    // Server-side apply: ownership conflict unless forced.
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let apply = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"k": v}});
    cms.patch("ssa", &PatchParams::apply("one"), &Patch::Apply(apply("1")))
        .await
        .unwrap();
    let (code, reason, msg) = status(
        cms.patch("ssa", &PatchParams::apply("two"), &Patch::Apply(apply("2")))
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"), "{msg}");
    let c = cms
        .patch(
            "ssa",
            &PatchParams::apply("two").force(),
            &Patch::Apply(apply("2")),
        )
        .await
        .unwrap();
    assert_eq!(c.data.unwrap()["k"], "2");
    let managers: Vec<String> = c
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"two".to_string()), "{managers:?}");
}

#[tokio::test]
async fn delete_finalizers_preconditions_and_propagation() {
    let (_sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut c = cm("fin");
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let created = cms.create(&PostParams::default(), &c).await.unwrap();

    // Preconditions.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let (code, reason, msg) = status(cms.delete("fin", &dp).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        msg.contains("Precondition failed: UID in precondition: wrong"),
        "{msg}"
    );

    // With a finalizer, the object stays with a deletionTimestamp.
    cms.delete("fin", &DeleteParams::default()).await.unwrap();
    let held = cms.get("fin").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    // Emptying the finalizers removes it.
    cms.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(status(cms.get("fin").await).0, 404);
    let _ = created;

    // Orphan strips the ownerReference from dependents; Foreground sets the finalizer.
    let owner = cms.create(&PostParams::default(), &cm("owner")).await.unwrap();
    let uid = owner.metadata.uid.clone().unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}}))
    .unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    // As kube-apiserver does, the owner comes back marked (deletionTimestamp + the `orphan`
    // finalizer) and goes once the references are stripped.
    let marked = cms
        .delete("owner", &DeleteParams::orphan())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.finalizers, Some(vec!["orphan".to_string()]));
    let gone = kube::runtime::wait::await_condition(
        cms.clone(),
        "owner",
        kube::runtime::wait::conditions::is_deleted(&uid),
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), gone)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status(cms.get("owner").await).0, 404);
    assert!(cms.get("dep").await.unwrap().metadata.owner_references.is_none());

    cms.create(&PostParams::default(), &cm("fg")).await.unwrap();
    cms.delete("fg", &DeleteParams::foreground()).await.unwrap();
    let fg = cms.get("fg").await.unwrap();
    assert_eq!(
        fg.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    assert!(fg.metadata.deletion_timestamp.is_some());

    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    cms.delete("dep", &dp).await.unwrap();
    assert_eq!(status(cms.get("dep").await).0, 404);

    // deletecollection with a label selector.
    for n in ["c1", "c2"] {
        cms.create(&PostParams::default(), &cm(n)).await.unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &kube::api::ListParams::default().labels("app=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, vec!["fg".to_string()]);

    // Deleting a namespace deletes what is in it.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "tmp"}})).unwrap(),
    )
    .await
    .unwrap();
    let in_tmp: Api<ConfigMap> = Api::namespaced(client.clone(), "tmp");
    in_tmp.create(&PostParams::default(), &cm("x")).await.unwrap();
    nss.delete("tmp", &DeleteParams::default()).await.unwrap();
    assert_eq!(status(in_tmp.get("x").await).0, 404);
}

#[tokio::test]
async fn dynamic_api_works() {
    let (_sb, client) = start().await;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"));
    let leases: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}
    }))
    .unwrap();
    leases.create(&PostParams::default(), &obj).await.unwrap();
    let got = leases.get("l").await.unwrap();
    assert_eq!(got.data["spec"]["holderIdentity"], "me");
    assert_eq!(got.types.unwrap().kind, "Lease");
    let list = leases.list(&Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
}

#[tokio::test]
async fn last_finalizer_removal_is_seen_as_deleted_with_final_state() {
    use futures::TryStreamExt;
    use kube::api::{WatchEvent, WatchParams};
    let (_sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut c = cm("f");
    c.metadata.finalizers = Some(vec!["example.com/x".into()]);
    let rv = cms
        .create(&PostParams::default(), &c)
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    let mut s = Box::pin(cms.watch(&WatchParams::default().timeout(2), &rv).await.unwrap());
    let mut saw = vec![];
    while let Some(ev) = s.try_next().await.unwrap() {
        match ev {
            WatchEvent::Modified(o) => {
                saw.push(("MODIFIED", o.metadata.finalizers.unwrap_or_default().len()))
            }
            WatchEvent::Deleted(o) => {
                assert!(o.metadata.deletion_timestamp.is_some());
                saw.push(("DELETED", o.metadata.finalizers.unwrap_or_default().len()));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(saw, vec![("MODIFIED", 1), ("DELETED", 0)]);
}

#[tokio::test]
async fn label_and_annotation_keys_are_validated_on_create_and_patch() {
    let (sb, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let long_key = format!("volops.dev/{}", "k".repeat(64));
    let mut bad = cm("keys");
    bad.metadata.annotations = Some([(long_key.clone(), "v".to_string())].into());
    let (code, reason, msg) = status(cms.create(&PostParams::default(), &bad).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        msg,
        format!(
            "ConfigMap \"keys\" is invalid: metadata.annotations: Invalid value: \"{long_key}\": name part must be no more than 63 characters"
        )
    );
    cms.create(&PostParams::default(), &cm("keys")).await.unwrap();
    let patch = json!({"metadata": {"labels": {"ok": "-bad"}}});
    let (code, _, msg) = status(
        cms.patch("keys", &PatchParams::default(), &Patch::Merge(&patch))
            .await,
    );
    assert_eq!(code, 422);
    assert!(
        msg.starts_with(
            "ConfigMap \"keys\" is invalid: metadata.labels: Invalid value: \"-bad\": a valid label"
        ),
        "{msg}"
    );
    let fits = json!({"metadata": {"annotations": {format!("volops.dev/{}", "k".repeat(63)): "v"}}});
    cms.patch("keys", &PatchParams::default(), &Patch::Merge(&fits))
        .await
        .expect("a 63-character name part is accepted");
    sb.shutdown().await.unwrap();
}
