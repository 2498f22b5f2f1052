//! Built-in admission: PVC shrink/resize rules, ResourceQuota, StatefulSet immutability.

use serde_json::{Value, json};
use volops_sandbox_machinery::{
    AdmissionAttributes, ApiError, ObjectLookup, Operation, UserInfo, quota_usage, quota_used, validate,
};

#[derive(Default)]
struct Store(Vec<(String, String, Value)>); // (group, resource, object)

impl ObjectLookup for Store {
    fn get(&self, group: &str, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.list(group, resource, namespace)
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
    }
    fn list(&self, group: &str, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.0
            .iter()
            .filter(|(g, r, o)| {
                g == group && r == resource && namespace.is_none_or(|ns| o["metadata"]["namespace"] == ns)
            })
            .map(|(_, _, o)| o.clone())
            .collect()
    }
}

fn pvc(name: &str, class: &str, request: &str, capacity: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "db"},
        "spec": {"storageClassName": class, "resources": {"requests": {"storage": request}}},
        "status": {"phase": "Pending"}});
    if let Some(c) = capacity {
        p["status"] = json!({"phase": "Bound", "capacity": {"storage": c}});
    }
    p
}

fn attrs(
    op: Operation,
    group: &str,
    kind: &str,
    resource: &str,
    new: Option<Value>,
    old: Option<Value>,
) -> AdmissionAttributes {
    let name = new
        .as_ref()
        .or(old.as_ref())
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    AdmissionAttributes {
        operation: op,
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        resource: resource.into(),
        subresource: String::new(),
        name,
        namespace: Some("db".into()),
        object: new,
        old_object: old,
        dry_run: false,
        user: UserInfo {
            username: "tester".into(),
            ..UserInfo::default()
        },
        options: None,
    }
}

fn pvc_update(store: &Store, old: Value, new_request: &str) -> Result<(), ApiError> {
    let mut new = old.clone();
    new["spec"]["resources"]["requests"]["storage"] = json!(new_request);
    validate(
        &attrs(
            Operation::Update,
            "",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            Some(new),
            Some(old),
        ),
        store,
    )
}

fn store() -> Store {
    Store(vec![
        (
            "storage.k8s.io".into(),
            "storageclasses".into(),
            json!({"metadata": {"name": "fast"}, "allowVolumeExpansion": true}),
        ),
        (
            "storage.k8s.io".into(),
            "storageclasses".into(),
            json!({"metadata": {"name": "fixed"}}),
        ),
    ])
}

#[test]
fn pvc_shrink_below_capacity_is_invalid() {
    let s = store();
    let old = pvc("data-0", "fast", "10Gi", Some("10Gi"));
    let e = pvc_update(&s, old.clone(), "5Gi").err();
    let e = e.unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        r#"PersistentVolumeClaim "data-0" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"#
    );
    assert_eq!(
        e.details.map(|d| d["causes"][0]["reason"].clone()),
        Some(json!("FieldValueForbidden"))
    );
    // Recovering from a failed expansion: lower the request but stay above capacity.
    let grown = pvc("data-0", "fast", "20Gi", Some("10Gi"));
    assert_eq!(pvc_update(&s, grown.clone(), "15Gi"), Ok(()));
    assert!(pvc_update(&s, grown, "10Gi").is_err());
    assert_eq!(
        pvc_update(&s, old, "10240Mi"),
        Ok(()),
        "same size in other units is no change"
    );
}

#[test]
fn pvc_grow_needs_expandable_class_and_bound_claim() {
    let s = store();
    assert_eq!(
        pvc_update(&s, pvc("a", "fast", "1Gi", Some("1Gi")), "2Gi"),
        Ok(())
    );
    let e = pvc_update(&s, pvc("a", "fixed", "1Gi", Some("1Gi")), "2Gi")
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        r#"persistentvolumeclaims "a" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"#
    );
    let missing = pvc_update(&s, pvc("a", "gone", "1Gi", Some("1Gi")), "2Gi").map_err(|e| e.code);
    assert_eq!(missing, Err(403));
    let unbound = pvc_update(&s, pvc("a", "fast", "1Gi", None), "2Gi")
        .err()
        .map(|e| e.message);
    assert_eq!(
        unbound.as_deref(),
        Some(
            r#"PersistentVolumeClaim "a" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"#
        )
    );
}

fn quota_store(hard: Value) -> Store {
    let mut s = store();
    s.0.push((
        "".into(),
        "resourcequotas".into(),
        json!({"metadata": {"name": "storage", "namespace": "db"}, "spec": {"hard": hard}}),
    ));
    let mut a = pvc("a", "fast", "1Gi", Some("1Gi"));
    a["status"]["allocatedResources"] = json!({"storage": "2Gi"}); // charged max(spec, allocated)
    s.0.push(("".into(), "persistentvolumeclaims".into(), a));
    s.0.push((
        "".into(),
        "persistentvolumeclaims".into(),
        pvc("b", "fast", "1Gi", Some("1Gi")),
    ));
    s.0.push((
        "".into(),
        "persistentvolumeclaims".into(),
        json!({"metadata": {"name": "other-ns", "namespace": "x"},
        "spec": {"resources": {"requests": {"storage": "50Gi"}}}}),
    ));
    s
}

#[test]
fn quota_usage_is_exact_and_per_namespace() {
    let s = quota_store(json!({"requests.storage": "4Gi"}));
    let u = quota_usage("db", &s);
    assert_eq!(
        u.get("requests.storage").map(ToString::to_string).as_deref(),
        Some("3Gi")
    );
    assert_eq!(
        u.get("fast.storageclass.storage.k8s.io/requests.storage")
            .map(ToString::to_string)
            .as_deref(),
        Some("3Gi")
    );
    assert_eq!(
        u.get("persistentvolumeclaims")
            .map(ToString::to_string)
            .as_deref(),
        Some("2")
    );
    let q = s.list("", "resourcequotas", Some("db")).remove(0);
    assert_eq!(quota_used(&q, &s), json!({"requests.storage": "3Gi"}));
}

#[test]
fn quota_rejects_create_and_resize_beyond_hard() {
    let s = quota_store(json!({"requests.storage": "4Gi", "persistentvolumeclaims": "5"}));
    let create = |req: &str| {
        validate(
            &attrs(
                Operation::Create,
                "",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                Some(pvc("c", "fast", req, None)),
                None,
            ),
            &s,
        )
    };
    assert_eq!(create("1Gi"), Ok(()));
    let e = create("1536Mi")
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        r#"persistentvolumeclaims "c" is forbidden: exceeded quota: storage, requested: requests.storage=1536Mi, used: requests.storage=3Gi, limited: requests.storage=4Gi"#
    );
    // Resize: only the delta counts.
    let old = s
        .get("", "persistentvolumeclaims", Some("db"), "b")
        .unwrap_or_default();
    assert_eq!(pvc_update(&s, old.clone(), "2Gi"), Ok(()));
    let e = pvc_update(&s, old, "3Gi").err().map(|e| e.message);
    assert_eq!(
        e.as_deref(),
        Some(
            r#"persistentvolumeclaims "b" is forbidden: exceeded quota: storage, requested: requests.storage=2Gi, used: requests.storage=3Gi, limited: requests.storage=4Gi"#
        )
    );
}

#[test]
fn quota_per_storage_class_and_count() {
    let s = quota_store(
        json!({"fast.storageclass.storage.k8s.io/requests.storage": "3Gi", "persistentvolumeclaims": "2"}),
    );
    let e = validate(
        &attrs(
            Operation::Create,
            "",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            Some(pvc("c", "fast", "1Gi", None)),
            None,
        ),
        &s,
    )
    .err()
    .map(|e| e.message);
    assert_eq!(
        e.as_deref(),
        Some(
            r#"persistentvolumeclaims "c" is forbidden: exceeded quota: storage, requested: fast.storageclass.storage.k8s.io/requests.storage=1Gi,persistentvolumeclaims=1, used: fast.storageclass.storage.k8s.io/requests.storage=3Gi,persistentvolumeclaims=2, limited: fast.storageclass.storage.k8s.io/requests.storage=3Gi,persistentvolumeclaims=2"#
        )
    );
    // Another class is not limited by the class quota, but still by the count.
    let other = validate(
        &attrs(
            Operation::Create,
            "",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            Some(pvc("c", "slow", "1Gi", None)),
            None,
        ),
        &s,
    );
    assert_eq!(
        other.map_err(|e| e.message.contains("persistentvolumeclaims=1")),
        Err(true)
    );
}

fn sts(replicas: i64, vct_size: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "redis", "namespace": "db"},
        "spec": {"replicas": replicas, "serviceName": "redis", "template": {"spec": {"containers": [{"name": "r"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": vct_size}}}}]}})
}

#[test]
fn statefulset_spec_immutability() {
    let s = store();
    let upd = |new: Value| {
        validate(
            &attrs(
                Operation::Update,
                "apps",
                "StatefulSet",
                "statefulsets",
                Some(new),
                Some(sts(3, "1Gi")),
            ),
            &s,
        )
    };
    assert_eq!(upd(sts(5, "1Gi")), Ok(()));
    let mut tmpl = sts(3, "1Gi");
    tmpl["spec"]["template"]["spec"]["containers"][0]["image"] = json!("r:8");
    tmpl["spec"]["minReadySeconds"] = json!(5);
    assert_eq!(upd(tmpl), Ok(()));
    let e = upd(sts(3, "2Gi"))
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "StatefulSet.apps \"redis\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
    assert_eq!(e.details.map(|d| d["group"].clone()), Some(json!("apps")));
}

#[test]
fn pvc_other_spec_fields_are_immutable() {
    let s = store();
    let old = pvc("a", "fast", "1Gi", Some("1Gi"));
    let upd = |f: &dyn Fn(&mut Value)| {
        let mut new = old.clone();
        f(&mut new);
        validate(
            &attrs(
                Operation::Update,
                "",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                Some(new),
                Some(old.clone()),
            ),
            &s,
        )
    };
    let e = upd(&|n| n["spec"]["storageClassName"] = json!("fixed"))
        .err()
        .map(|e| e.message);
    assert_eq!(
        e.as_deref(),
        Some(
            r#"PersistentVolumeClaim "a" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"#
        )
    );
    assert_eq!(
        upd(&|n| n["spec"]["accessModes"] = json!(["ReadWriteOnce"])).map_err(|e| e.code),
        Err(422)
    );
    // Binding sets volumeName once; labels and status are not spec.
    assert_eq!(upd(&|n| n["spec"]["volumeName"] = json!("pv-1")), Ok(()));
    assert_eq!(upd(&|n| n["metadata"]["labels"] = json!({"x": "y"})), Ok(()));
    assert_eq!(
        upd(&|n| n["spec"]["volumeAttributesClassName"] = json!("gold")),
        Ok(())
    );
    assert_eq!(upd(&|n| n["spec"]["volumeMode"] = json!("Filesystem")), Ok(()));
    assert_eq!(
        upd(&|n| n["spec"]["volumeMode"] = json!("Block")).map_err(|e| e.code),
        Err(422)
    );
}
