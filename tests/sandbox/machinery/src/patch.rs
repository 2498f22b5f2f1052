//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! for built-in kinds, and server-side apply.

use serde_json::Value;

use crate::error::ApiError;
pub use crate::ssa::{record_update_manager, server_side_apply};

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(&e.to_string()))
}

/// Applies an `application/json-patch+json` body. A malformed patch is 400; a patch that
/// cannot be applied (missing path, failed `test`) is 422 like kube-apiserver.
pub fn apply_json_patch(obj: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let ops: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(&e.to_string()))?;
    let mut out = obj.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| ApiError::unprocessable(&e.to_string()))?;
    Ok(out)
}

/// Applies an `application/merge-patch+json` body.
pub fn apply_merge_patch(obj: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let p = parse(patch)?;
    let mut out = obj.clone();
    json_patch::merge(&mut out, &p);
    Ok(out)
}

/// kube-apiserver's answer to a strategic merge patch on a custom resource.
pub const SMP_UNSUPPORTED: &str = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/// Applies an `application/strategic-merge-patch+json` body to a built-in kind; custom
/// resources get 415 UnsupportedMediaType as from kube-apiserver.
pub fn apply_strategic_merge_patch(
    obj: &Value,
    patch: &[u8],
    group: &str,
    kind: &str,
) -> Result<Value, ApiError> {
    if !crate::smp::is_builtin_group(group) {
        return Err(ApiError::unsupported_media_type(SMP_UNSUPPORTED));
    }
    let p = parse(patch)?;
    if !p.is_object() {
        return Err(ApiError::bad_request(
            "strategic merge patch must be a JSON object",
        ));
    }
    let mut out = obj.clone();
    let ctx = crate::smp::Ctx { kind, builtin: true };
    crate::smp::merge(ctx, &mut out, &p);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["f1"]},
            "spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 80, "name": "http"}], "args": ["x", "y"]},
                {"name": "side", "image": "side:1"}],
              "volumes": [{"name": "data", "emptyDir": {}}]}})
    }

    fn smp(obj: &Value, p: Value) -> Value {
        apply_strategic_merge_patch(obj, p.to_string().as_bytes(), "", "Pod")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn json_patch_applies_and_reports_failures() {
        let out = apply_json_patch(
            &pod(),
            br#"[{"op":"replace","path":"/spec/containers/0/image","value":"app:2"}]"#,
        );
        assert_eq!(
            out.map(|o| o["spec"]["containers"][0]["image"].clone()),
            Ok(json!("app:2"))
        );
        let bad = apply_json_patch(&pod(), br#"[{"op":"remove","path":"/spec/nope"}]"#);
        assert_eq!(bad.map_err(|e| e.code), Err(422));
        let test_fail = apply_json_patch(&pod(), br#"[{"op":"test","path":"/metadata/name","value":"q"}]"#);
        assert_eq!(test_fail.map_err(|e| e.reason), Err("Invalid".to_string()));
        assert_eq!(
            apply_json_patch(&pod(), b"{not json").map_err(|e| e.code),
            Err(400)
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let out = apply_merge_patch(
            &pod(),
            br#"{"metadata":{"labels":{"a":null,"c":"3"}},"spec":{"volumes":[]}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        assert_eq!(out["spec"]["volumes"], json!([]));
        assert_eq!(out["spec"]["containers"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn smp_merges_containers_env_ports_by_key() {
        let out = smp(
            &pod(),
            json!({"spec": {"containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
             "ports": [{"containerPort": 9090, "name": "metrics"}], "args": ["z"]},
            {"name": "new", "image": "new:1"}]}}),
        );
        let c = &out["spec"]["containers"];
        assert_eq!(c.as_array().map(Vec::len), Some(3));
        assert_eq!(c[0]["image"], "app:2");
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(c[0]["ports"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            c[0]["args"],
            json!(["z"]),
            "primitive lists without strategy replace"
        );
        assert_eq!(c[1]["name"], "side");
        assert_eq!(c[2]["name"], "new");
    }

    #[test]
    fn smp_directives() {
        let out = smp(
            &pod(),
            json!({"spec": {"containers": [{"name": "side", "$patch": "delete"}],
            "$setElementOrder/containers": [{"name": "app"}]}}),
        );
        assert_eq!(out["spec"]["containers"].as_array().map(Vec::len), Some(1));
        let out = smp(
            &pod(),
            json!({"spec": {"volumes": [{"name": "only", "emptyDir": {}}, {"$patch": "replace"}]}}),
        );
        assert_eq!(out["spec"]["volumes"], json!([{"name": "only", "emptyDir": {}}]));
        let out = smp(
            &pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "z": "9"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"z": "9"}));
        let out = smp(&pod(), json!({"metadata": {"finalizers": ["f2"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["f1", "f2"]));
        let out = smp(
            &pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!([]));
        let out = smp(
            &pod(),
            json!({"spec": {"volumes": [{"name": "data", "hostPath": {"path": "/x"}, "$retainKeys": ["name", "hostPath"]}]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/x"}}])
        );
        let out = smp(&pod(), json!({"metadata": {"labels": {"a": null}}}));
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
    }

    #[test]
    fn smp_statefulset_and_service_lists() {
        let sts = json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "db", "image": "r:6"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]},
            "status": {"conditions": [{"type": "A", "status": "True"}]}});
        let out = apply_strategic_merge_patch(
            &sts,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "db", "image": "r:7"}]}}},
            "status": {"conditions": [{"type": "B", "status": "False"}]}})
            .to_string()
            .as_bytes(),
            "apps",
            "StatefulSet",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "db", "image": "r:7"}])
        );
        assert_eq!(out["status"]["conditions"].as_array().map(Vec::len), Some(2));
        assert_eq!(out["spec"]["replicas"], 1);
        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}]}});
        let out = apply_strategic_merge_patch(
            &svc,
            br#"{"spec":{"ports":[{"port":80,"targetPort":8080}]}}"#,
            "",
            "Service",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "name": "http", "targetPort": 8080}])
        );
    }

    #[test]
    fn smp_on_custom_resource_is_415() {
        let e = apply_strategic_merge_patch(&json!({}), b"{}", "kubedb.com", "Redis");
        let e = e.err().unwrap_or_else(|| ApiError::bad_request("expected error"));
        assert_eq!(
            (e.code, e.reason.as_str(), e.message.as_str()),
            (415, "UnsupportedMediaType", SMP_UNSUPPORTED)
        );
    }
}
