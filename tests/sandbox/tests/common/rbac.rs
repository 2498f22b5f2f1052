//! RBAC fixtures for the auth tests: namespaces, roles and bindings created by the admin.
#![allow(dead_code, clippy::unwrap_used)]

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

pub const GROUP: &str = "rbac.authorization.k8s.io";

pub fn user(name: &str) -> Value {
    json!({"kind": "User", "apiGroup": GROUP, "name": name})
}

pub fn group(name: &str) -> Value {
    json!({"kind": "Group", "apiGroup": GROUP, "name": name})
}

pub fn service_account(ns: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
}

pub fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

pub async fn namespace(admin: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

pub async fn create_service_account(admin: &kube::Client, ns: &str, name: &str) -> ServiceAccount {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap()
}

pub async fn role(admin: &kube::Client, ns: &str, name: &str, rules: Value) {
    let r: Role = serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules})).unwrap();
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &r)
        .await
        .unwrap();
}

pub async fn cluster_role(admin: &kube::Client, name: &str, labels: Value, rules: Value) {
    let r: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels}, "rules": rules
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &r)
        .await
        .unwrap();
}

pub async fn role_binding(
    admin: &kube::Client,
    ns: &str,
    name: &str,
    role_kind: &str,
    role: &str,
    subjects: Value,
) {
    let b: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role},
        "subjects": subjects,
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &b)
        .await
        .unwrap();
}

pub async fn cluster_role_binding(admin: &kube::Client, name: &str, role: &str, subjects: Value) {
    let b: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &b)
        .await
        .unwrap();
}
