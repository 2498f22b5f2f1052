//! The webhook configurations exactly as the chart registers them (templates/
//! {mutating,validating}-webhook.yaml with default values): names, paths, rules (never
//! `/status`; autoscalers too), matchConditions that skip the controller's own user, failurePolicy Fail,
//! sideEffects None, caBundle = the serving CA.

use base64::Engine;
use serde_json::{Value, json};

use crate::identity::controller_username;

/// The chart's default release namespace and webhook Service name (release `volops`).
pub const RELEASE_NS: &str = "volops-system";
pub const SERVICE: &str = "volops-webhook";
pub const SERVICE_PORT: u16 = 443;

/// Names of the webhooks.
pub const MUTATE_OPS: &str = "opsrequests.mutate.volops.dev";
pub const VALIDATE_OPS: &str = "opsrequests.validate.volops.dev";
pub const VALIDATE_DBS: &str = "databases.validate.volops.dev";
pub const VALIDATE_PVCS: &str = "pvcs.validate.volops.dev";
pub const VALIDATE_POLICIES: &str = "policies.validate.volops.dev";
pub const MUTATE_AUTOSCALERS: &str = "autoscalers.mutate.volops.dev";
pub const VALIDATE_AUTOSCALERS: &str = "autoscalers.validate.volops.dev";

/// The webhooks are called only when `spec.storage` of a database changes...
pub const DATABASE_STORAGE_CHANGES: &str = "!has(object.spec) || !has(oldObject.spec) || \
     !has(object.spec.storage) || !has(oldObject.spec.storage) || object.spec.storage != oldObject.spec.storage";
/// ... or the storage requests of a PVC.
pub const PVC_REQUESTS_CHANGE: &str = "!has(object.spec.resources) || !has(oldObject.spec.resources) || \
     !has(object.spec.resources.requests) || !has(oldObject.spec.resources.requests) || \
     object.spec.resources.requests != oldObject.spec.resources.requests";

/// `matchConditions`: never the controller's own user, plus `extra` (name, expression).
fn match_conditions(extra: &[(&str, &str)]) -> Value {
    let mut conditions = vec![json!({"name": "exclude-volops-controller",
        "expression": format!("request.userInfo.username != '{}'", controller_username())})];
    conditions.extend(
        extra
            .iter()
            .map(|(name, expression)| json!({"name": name, "expression": expression})),
    );
    Value::Array(conditions)
}

/// Where the API server sends reviews.
#[derive(Clone, Debug)]
pub enum Target {
    /// `clientConfig.service` (the chart's default); the sandbox resolves it.
    Service { namespace: String, name: String },
    /// `clientConfig.url` (the chart's `webhook.externalURL`), without the path.
    Url(String),
}

impl Default for Target {
    fn default() -> Self {
        Target::Service {
            namespace: RELEASE_NS.to_owned(),
            name: SERVICE.to_owned(),
        }
    }
}

fn client_config(target: &Target, ca_b64: &str, path: &str) -> Value {
    match target {
        Target::Service { namespace, name } => json!({
            "service": {"name": name, "namespace": namespace, "path": path, "port": SERVICE_PORT},
            "caBundle": ca_b64}),
        Target::Url(base) => json!({
            "url": format!("{}{path}", base.trim_end_matches('/')), "caBundle": ca_b64}),
    }
}

/// (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) as JSON objects.
pub fn webhook_configurations(ca_pem: &str, target: &Target) -> (Value, Value) {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let common = json!({
        "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "matchPolicy": "Equivalent", "timeoutSeconds": 10,
        "namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [RELEASE_NS, "kube-system"]},
            {"key": "volops.dev/webhook", "operator": "NotIn", "values": ["disabled"]}]}
    });
    let hook = |name: &str, path: &str, rules: Value, extra: &[(&str, &str)]| {
        let mut h = common.clone();
        h["name"] = json!(name);
        h["clientConfig"] = client_config(target, &ca, path);
        h["rules"] = rules;
        h["matchConditions"] = match_conditions(extra);
        h
    };
    let mut mutate = hook(
        MUTATE_OPS,
        "/mutate",
        json!([{"apiGroups": ["ops.kubedb.com"], "apiVersions": ["v1alpha1"],
                "resources": ["redisopsrequests", "zookeeperopsrequests"],
                "operations": ["CREATE"], "scope": "Namespaced"}]),
        &[],
    );
    mutate["reinvocationPolicy"] = json!("Never");
    let autoscalers = json!([{"apiGroups": ["autoscaling.kubedb.com"], "apiVersions": ["v1alpha1"],
            "resources": ["redisautoscalers", "zookeeperautoscalers"],
            "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}]);
    let mut mutate_autoscalers = hook(MUTATE_AUTOSCALERS, "/mutate", autoscalers.clone(), &[]);
    mutate_autoscalers["reinvocationPolicy"] = json!("Never");
    let validate_autoscalers = hook(VALIDATE_AUTOSCALERS, "/validate", autoscalers, &[]);
    let validate_ops = hook(
        VALIDATE_OPS,
        "/validate",
        json!([{"apiGroups": ["ops.kubedb.com"], "apiVersions": ["v1alpha1"],
                "resources": ["redisopsrequests", "zookeeperopsrequests"],
                "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}]),
        &[],
    );
    let validate_db = hook(
        VALIDATE_DBS,
        "/validate",
        json!([{"apiGroups": ["kubedb.com"], "apiVersions": ["v1", "v1alpha2"],
                "resources": ["redises", "zookeepers"],
                "operations": ["UPDATE"], "scope": "Namespaced"}]),
        &[("storage-changes", DATABASE_STORAGE_CHANGES)],
    );
    let validate_pvcs = hook(
        VALIDATE_PVCS,
        "/validate",
        json!([{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["persistentvolumeclaims"],
                "operations": ["UPDATE"], "scope": "Namespaced"}]),
        &[("storage-request-changes", PVC_REQUESTS_CHANGE)],
    );
    let validate_policies = hook(
        VALIDATE_POLICIES,
        "/validate",
        json!([{"apiGroups": ["volops.dev"], "apiVersions": ["v1alpha1"], "resources": ["volumeexpansionpolicies"],
                "operations": ["CREATE", "UPDATE"], "scope": "Cluster"}]),
        &[],
    );
    (
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": "volops"}, "webhooks": [mutate, mutate_autoscalers]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "volops"},
               "webhooks": [validate_ops, validate_db, validate_pvcs, validate_policies, validate_autoscalers]}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_target_puts_the_path_after_the_base() {
        let (m, v) = webhook_configurations("CA", &Target::Url("https://127.0.0.1:9/".into()));
        assert_eq!(
            m["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:9/mutate"
        );
        assert_eq!(
            v["webhooks"][1]["clientConfig"]["url"],
            "https://127.0.0.1:9/validate"
        );
        assert_eq!(v["webhooks"][0]["clientConfig"]["caBundle"], "Q0E=");
    }

    #[test]
    fn status_is_never_intercepted_and_the_controller_is_skipped_everywhere() {
        let (m, v) = webhook_configurations("CA", &Target::default());
        let hooks: Vec<&Value> = m["webhooks"]
            .as_array()
            .into_iter()
            .chain(v["webhooks"].as_array())
            .flatten()
            .collect();
        assert_eq!(hooks.len(), 7);
        let skip = "request.userInfo.username != 'system:serviceaccount:volops-system:volops-controller'";
        for h in hooks {
            let resources = h["rules"][0]["resources"].to_string();
            assert!(!resources.contains("/status"), "{resources}");
            assert_eq!(h["matchConditions"][0]["expression"], skip, "{}", h["name"]);
        }
        assert_eq!(v["webhooks"][0]["clientConfig"]["service"]["name"], SERVICE);
        assert_eq!(
            v["webhooks"][2]["matchConditions"][1]["name"],
            "storage-request-changes"
        );
    }
}
