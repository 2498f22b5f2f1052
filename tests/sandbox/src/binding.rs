//! `pods/binding` (what kube-scheduler posts): sets `spec.nodeName` of a pod not yet
//! assigned, as kube-apiserver's BindingREST does.

use http::StatusCode;
use serde_json::{Value, json};

use crate::api::{Api, Reply, Req};
use crate::machinery::ApiError;
use crate::route::Target;
use crate::store::WriteAction;

/// Serves `POST .../pods/{name}/binding`; None for every other target.
pub fn serve(api: &Api, t: &Target, req: &Req) -> Option<Result<Reply, ApiError>> {
    let is_binding =
        t.info.group.is_empty() && t.info.plural == "pods" && t.sub.as_deref() == Some("binding");
    if !is_binding {
        return None;
    }
    if req.method != http::Method::POST {
        return Some(Err(ApiError::method_not_supported(
            "pods/binding",
            req.method.as_str(),
        )));
    }
    Some(req.json_body(&t.info).and_then(|b| bind(api, t, &b)))
}

fn bind(api: &Api, t: &Target, binding: &Value) -> Result<Reply, ApiError> {
    let pod = t.name_str();
    let node = binding["target"]["name"].as_str().unwrap_or_default();
    if node.is_empty() {
        return Err(crate::machinery::invalid_simple(
            "Binding",
            "",
            pod,
            "target.name",
            "Required value",
        ));
    }
    let named = binding["metadata"]["name"].as_str().unwrap_or(pod);
    if named != pod {
        return Err(ApiError::bad_request(&format!(
            "the name of the object ({named}) does not match the name on the URL ({pod})"
        )));
    }
    let uid = binding["metadata"]["uid"].as_str().unwrap_or_default();
    let annotations = binding["metadata"]["annotations"].clone();
    let conflict = |msg: String| ApiError::conflict("pods/binding", pod, &msg);
    api.store.write(&t.info.store_key(), t.ns_str(), pod, |old, _| {
        let Some(old) = old else {
            return Err(ApiError::not_found("pods", pod));
        };
        if !uid.is_empty() && old["metadata"]["uid"].as_str() != Some(uid) {
            return Err(conflict(format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old["metadata"]["uid"].as_str().unwrap_or_default()
            )));
        }
        if !old["metadata"]["deletionTimestamp"].is_null() {
            return Err(conflict(format!(
                "pod {pod} is being deleted, cannot be assigned to a host"
            )));
        }
        if let Some(current) = old["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(conflict(format!(
                "pod {pod} is already assigned to node \"{current}\""
            )));
        }
        let mut obj = (**old).clone();
        obj["spec"]["nodeName"] = json!(node);
        if let Some(extra) = annotations.as_object() {
            for (k, v) in extra {
                obj["metadata"]["annotations"][k] = v.clone();
            }
        }
        scheduled(&mut obj);
        Ok(WriteAction::Put(obj))
    })?;
    Ok(Reply {
        status: StatusCode::CREATED,
        body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        warnings: vec![],
    })
}

/// Sets the `PodScheduled` condition to True.
fn scheduled(pod: &mut Value) {
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                      "lastTransitionTime": crate::meta::now()});
    let conds = &mut pod["status"]["conditions"];
    if !conds.is_array() {
        *conds = json!([]);
    }
    if let Some(list) = conds.as_array_mut() {
        list.retain(|c| c["type"] != "PodScheduled");
        list.push(cond);
    }
}
