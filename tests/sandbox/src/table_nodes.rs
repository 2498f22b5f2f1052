//! kube's table columns of Nodes (`kubectl get nodes [-o wide]`).

use serde_json::{Value, json};

use super::{Col, age_column, col, s};

/// kube's node columns: Status is the Ready condition (`SchedulingDisabled` appended when
/// cordoned), Roles the `node-role.kubernetes.io/*` labels.
pub(super) fn node_columns() -> Vec<Col> {
    let wide = |name: &str, cell: fn(&Value) -> Value| Col {
        priority: 1,
        ..col(name, "string", cell)
    };
    let info = |field: &'static str| move |o: &Value| s(&o["status"]["nodeInfo"][field]);
    vec![
        col("Name", "string", |o| s(&o["metadata"]["name"])),
        col("Status", "string", |o| {
            let ready = o["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| match c["status"].as_str() {
                    Some("True") => "Ready",
                    Some("False") => "NotReady",
                    _ => "Unknown",
                })
                .unwrap_or("Unknown");
            match o["spec"]["unschedulable"].as_bool() {
                Some(true) => json!(format!("{ready},SchedulingDisabled")),
                _ => json!(ready),
            }
        }),
        col("Roles", "string", |o| {
            let roles: Vec<&str> = o["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .collect()
                })
                .unwrap_or_default();
            if roles.is_empty() {
                json!("<none>")
            } else {
                json!(roles.join(","))
            }
        }),
        age_column(),
        col("Version", "string", info("kubeletVersion")),
        wide("Internal-IP", |o| {
            let ip = o["status"]["addresses"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
                .map(|x| x["address"].clone());
            s(&ip.unwrap_or(Value::Null))
        }),
        wide("External-IP", |o| {
            let ip = o["status"]["addresses"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["type"] == "ExternalIP"))
                .map(|x| x["address"].clone());
            s(&ip.unwrap_or(Value::Null))
        }),
        wide("OS-Image", |o| s(&o["status"]["nodeInfo"]["osImage"])),
        wide("Kernel-Version", |o| s(&o["status"]["nodeInfo"]["kernelVersion"])),
        wide("Container-Runtime", |o| {
            s(&o["status"]["nodeInfo"]["containerRuntimeVersion"])
        }),
    ]
}
