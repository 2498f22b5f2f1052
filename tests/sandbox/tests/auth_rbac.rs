//! RBAC as kube-apiserver enforces it: Role/ClusterRole through RoleBinding/ClusterRoleBinding,
//! resourceNames, subresources, non-resource URLs, ClusterRole aggregation, missing roles, and
//! escalation prevention; refusals with kube's Forbidden bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::rbac::{self, group, rule, user};
use common::{anonymous_client, start, status};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

fn forbidden(r: Result<impl std::fmt::Debug, kube::Error>) -> String {
    let (code, reason, message) = status(r);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"), "{message}");
    message
}

#[tokio::test]
async fn roles_and_bindings_decide_every_verb() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    rbac::namespace(&admin, "other").await;
    for ns in ["demo", "other"] {
        Api::<ConfigMap>::namespaced(admin.clone(), ns)
            .create(&PostParams::default(), &cm("c"))
            .await
            .unwrap();
    }
    let alice = sb.client_with_certificate("alice", &["tenants"]).await.unwrap();
    let demo: Api<ConfigMap> = Api::namespaced(alice.clone(), "demo");

    // Nothing is allowed before a binding.
    assert_eq!(
        forbidden(demo.get("c").await),
        r#"configmaps "c" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "demo""#
    );
    assert_eq!(
        forbidden(demo.list(&ListParams::default()).await),
        r#"configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "demo""#
    );

    rbac::role(
        &admin,
        "demo",
        "cm-reader",
        json!([rule(&["get", "list", "watch"], &[""], &["configmaps"])]),
    )
    .await;
    rbac::role_binding(
        &admin,
        "demo",
        "alice-reads",
        "Role",
        "cm-reader",
        json!([user("alice")]),
    )
    .await;

    // The next request already sees the binding.
    assert_eq!(demo.get("c").await.unwrap().data.unwrap()["k"], "v");
    assert_eq!(demo.list(&ListParams::default()).await.unwrap().items.len(), 1);
    assert_eq!(
        forbidden(demo.delete("c", &DeleteParams::default()).await),
        r#"configmaps "c" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "demo""#
    );
    assert_eq!(
        forbidden(demo.create(&PostParams::default(), &cm("d")).await),
        r#"configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "demo""#
    );
    // A Role grants nothing outside its namespace.
    let other: Api<ConfigMap> = Api::namespaced(alice.clone(), "other");
    forbidden(other.get("c").await);
    // Cluster scope is spelled as kube spells it.
    assert_eq!(
        forbidden(
            Api::<StorageClass>::all(alice.clone())
                .list(&ListParams::default())
                .await
        ),
        r#"storageclasses.storage.k8s.io is forbidden: User "alice" cannot list resource "storageclasses" in API group "storage.k8s.io" at the cluster scope"#
    );

    // A group subject and a ClusterRole through a RoleBinding: only in that namespace.
    rbac::cluster_role(
        &admin,
        "cm-writer",
        json!({}),
        json!([rule(&["create", "delete"], &[""], &["configmaps"])]),
    )
    .await;
    rbac::role_binding(
        &admin,
        "other",
        "tenants-write",
        "ClusterRole",
        "cm-writer",
        json!([group("tenants")]),
    )
    .await;
    other.create(&PostParams::default(), &cm("mine")).await.unwrap();
    forbidden(demo.create(&PostParams::default(), &cm("mine")).await);

    // A ClusterRoleBinding grants everywhere, including cluster-scoped resources.
    rbac::cluster_role(
        &admin,
        "sc-reader",
        json!({}),
        json!([rule(&["list"], &["storage.k8s.io"], &["storageclasses"])]),
    )
    .await;
    rbac::cluster_role_binding(&admin, "alice-sc", "sc-reader", json!([user("alice")])).await;
    Api::<StorageClass>::all(alice.clone())
        .list(&ListParams::default())
        .await
        .unwrap();

    // Removing the binding revokes at once.
    Api::<RoleBinding>::namespaced(admin.clone(), "demo")
        .delete("alice-reads", &DeleteParams::default())
        .await
        .unwrap();
    forbidden(demo.get("c").await);
}

#[tokio::test]
async fn resource_names_subresources_and_missing_roles() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "demo");
    for name in ["app", "db"] {
        let s: Secret = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(admin.clone(), "demo")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    rbac::role(
        &admin,
        "demo",
        "narrow",
        json!([
            {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app"]},
            rule(&["patch", "get"], &[""], &["pods/status"]),
        ]),
    )
    .await;
    rbac::role_binding(&admin, "demo", "narrow", "Role", "narrow", json!([user("alice")])).await;
    let alice = sb.client_with_certificate("alice", &[]).await.unwrap();

    let s: Api<Secret> = Api::namespaced(alice.clone(), "demo");
    s.get("app").await.unwrap();
    forbidden(s.get("db").await);
    // resourceNames never allow a list (it names no object).
    forbidden(s.list(&ListParams::default()).await);

    let pods: Api<Pod> = Api::namespaced(alice.clone(), "demo");
    let patch = Patch::Merge(json!({"status": {"message": "hi"}}));
    pods.patch_status("p", &PatchParams::default(), &patch)
        .await
        .unwrap();
    pods.get_status("p").await.unwrap();
    assert_eq!(
        forbidden(pods.patch("p", &PatchParams::default(), &patch).await),
        r#"pods "p" is forbidden: User "alice" cannot patch resource "pods" in API group "" in the namespace "demo""#
    );
    // Subresources are named resource/subresource, whether served or not.
    assert_eq!(
        forbidden(pods.logs("p", &Default::default()).await),
        r#"pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "demo""#
    );

    // A binding to a missing role grants nothing and says so.
    rbac::role_binding(&admin, "demo", "dangling", "Role", "gone", json!([user("bob")])).await;
    let bob = sb.client_with_certificate("bob", &[]).await.unwrap();
    assert_eq!(
        forbidden(Api::<Secret>::namespaced(bob, "demo").get("app").await),
        r#"secrets "app" is forbidden: User "bob" cannot get resource "secrets" in API group "" in the namespace "demo": RBAC: role.rbac.authorization.k8s.io "gone" not found"#
    );
}

#[tokio::test]
async fn non_resource_urls_and_anonymous_requests() {
    let (sb, admin) = start().await;
    let web = anonymous_client(&sb).build().unwrap();
    let get = |path: &str| web.get(format!("{}{path}", sb.url())).send();

    // kube's defaults: anyone may read health and version, only the authenticated discover.
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/version").await.unwrap().status(), 200);
    let resp = get("/api").await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "forbidden: User \"system:anonymous\" cannot get path \"/api\"",
            "reason": "Forbidden", "details": {}, "code": 403})
    );
    let resp = get("/api/v1/namespaces/default/configmaps/x").await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "configmaps \"x\" is forbidden: User \"system:anonymous\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\"",
            "reason": "Forbidden", "details": {"name": "x", "kind": "configmaps"}, "code": 403})
    );
    // The fault endpoints are not a non-resource URL anyone may use.
    assert_eq!(get("/sandbox/v1/faults").await.unwrap().status(), 403);

    // An authenticated user discovers; other paths need a nonResourceURLs rule.
    let alice = sb.client_with_certificate("alice", &[]).await.unwrap();
    alice.apiserver_version().await.unwrap();
    kube::Discovery::new(alice.clone()).run().await.unwrap();
    let logs = http::Request::get("/logs/kube.log").body(Vec::new()).unwrap();
    let (code, _, message) = status(alice.request_text(logs).await);
    assert_eq!(code, 403);
    assert_eq!(
        message,
        r#"forbidden: User "alice" cannot get path "/logs/kube.log""#
    );
    rbac::cluster_role(
        &admin,
        "log-reader",
        json!({}),
        json!([{"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}]),
    )
    .await;
    rbac::cluster_role_binding(&admin, "alice-logs", "log-reader", json!([user("alice")])).await;
    // Allowed now: the sandbox serves no such path, so kube's 404 follows.
    let logs = http::Request::get("/logs/kube.log").body(Vec::new()).unwrap();
    assert_eq!(status(alice.request_text(logs).await).0, 404);
}

#[tokio::test]
async fn aggregated_cluster_roles_extend_edit() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .unwrap();
    Api::all(admin.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    rbac::role_binding(
        &admin,
        "demo",
        "alice-edit",
        "ClusterRole",
        "edit",
        json!([user("alice")]),
    )
    .await;
    let alice = sb.client_with_certificate("alice", &[]).await.unwrap();

    // edit carries the bootstrap rules (view's too, aggregated into it).
    let cms: Api<ConfigMap> = Api::namespaced(alice.clone(), "demo");
    cms.create(&PostParams::default(), &cm("c")).await.unwrap();
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(alice.clone(), "demo", &ar);
    forbidden(widgets.list(&ListParams::default()).await);

    // A chart's ClusterRole labelled aggregate-to-edit extends edit (and admin, which takes edit).
    rbac::cluster_role(
        &admin,
        "widgets-edit",
        json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
        json!([rule(&["get", "list", "create"], &["example.com"], &["widgets"])]),
    )
    .await;
    widgets.list(&ListParams::default()).await.unwrap();
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    for name in ["edit", "admin"] {
        let rules = roles.get(name).await.unwrap().rules.unwrap();
        assert!(
            rules
                .iter()
                .any(|r| r.resources.as_deref() == Some(&["widgets".to_string()][..])),
            "{name}"
        );
    }
    assert!(
        roles
            .get("view")
            .await
            .unwrap()
            .rules
            .unwrap()
            .iter()
            .all(|r| r.resources.as_deref() != Some(&["widgets".to_string()][..]))
    );
    // Taking the label off shrinks edit again.
    roles
        .patch(
            "widgets-edit",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"rbac.authorization.k8s.io/aggregate-to-edit": null}}}),
            ),
        )
        .await
        .unwrap();
    forbidden(widgets.list(&ListParams::default()).await);
}

#[tokio::test]
async fn escalation_is_refused() {
    let (sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    // alice administers demo (admin lets her write roles and bindings there).
    rbac::role_binding(
        &admin,
        "demo",
        "alice-admin",
        "ClusterRole",
        "admin",
        json!([user("alice")]),
    )
    .await;
    let alice = sb.client_with_certificate("alice", &["tenants"]).await.unwrap();
    let roles: Api<Role> = Api::namespaced(alice.clone(), "demo");
    let role = |name: &str, rules: Value| -> Role {
        serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules})).unwrap()
    };

    // Permissions she holds she may hand on.
    roles
        .create(
            &PostParams::default(),
            &role("cm", json!([rule(&["get"], &[""], &["configmaps"])])),
        )
        .await
        .unwrap();
    // Others she may not.
    let too_much = role(
        "pv",
        json!([rule(
            &["get", "list"],
            &[""],
            &["persistentvolumes", "configmaps"]
        )]),
    );
    assert_eq!(
        forbidden(roles.create(&PostParams::default(), &too_much).await),
        "roles.rbac.authorization.k8s.io \"pv\" is forbidden: user \"alice\" (groups=[\"tenants\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"persistentvolumes\"], Verbs:[\"get\" \"list\"]}"
    );
    // Nor widen a role by update.
    let wider = Patch::Merge(json!({"rules": [rule(&["*"], &["*"], &["*"])]}));
    forbidden(roles.patch("cm", &PatchParams::default(), &wider).await);

    // Binding a role she does not hold is an escalation; so is a missing one.
    let bindings: Api<RoleBinding> = Api::namespaced(alice.clone(), "demo");
    let binding = |name: &str, kind: &str, role: &str| -> RoleBinding {
        serde_json::from_value(json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": rbac::GROUP, "kind": kind, "name": role},
            "subjects": [user("bob")]}))
        .unwrap()
    };
    bindings
        .create(
            &PostParams::default(),
            &binding("bob-view", "ClusterRole", "view"),
        )
        .await
        .unwrap();
    let msg = forbidden(
        bindings
            .create(
                &PostParams::default(),
                &binding("bob-root", "ClusterRole", "cluster-admin"),
            )
            .await,
    );
    assert!(
        msg.starts_with("rolebindings.rbac.authorization.k8s.io \"bob-root\" is forbidden: user \"alice\" (groups=[\"tenants\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"),
        "{msg}"
    );
    assert_eq!(
        forbidden(
            bindings
                .create(&PostParams::default(), &binding("bob-x", "Role", "missing"))
                .await
        ),
        r#"rolebindings.rbac.authorization.k8s.io "bob-x" is forbidden: role.rbac.authorization.k8s.io "missing" not found"#
    );
    // ClusterRoles are not hers to write at all.
    let cluster_roles: Api<ClusterRole> = Api::all(alice.clone());
    let cr: ClusterRole = serde_json::from_value(json!({"metadata": {"name": "mine"}})).unwrap();
    assert_eq!(
        forbidden(cluster_roles.create(&PostParams::default(), &cr).await),
        r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#
    );

    // `bind` on a role, or `escalate` on roles, lifts the check (as in kube).
    rbac::cluster_role(
        &admin,
        "delegate",
        json!({}),
        json!([
            {"verbs": ["bind"], "apiGroups": [rbac::GROUP], "resources": ["clusterroles"], "resourceNames": ["cluster-admin"]},
            rule(&["escalate"], &[rbac::GROUP], &["roles"]),
        ]),
    )
    .await;
    rbac::role_binding(
        &admin,
        "demo",
        "alice-delegate",
        "ClusterRole",
        "delegate",
        json!([user("alice")]),
    )
    .await;
    bindings
        .create(
            &PostParams::default(),
            &binding("bob-root", "ClusterRole", "cluster-admin"),
        )
        .await
        .unwrap();
    roles.create(&PostParams::default(), &too_much).await.unwrap();

    // The admin is never refused.
    Api::<Role>::namespaced(admin.clone(), "demo")
        .create(
            &PostParams::default(),
            &role("all", json!([rule(&["*"], &["*"], &["*"])])),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn rbac_objects_are_validated_and_defaulted() {
    let (_sb, admin) = start().await;
    rbac::namespace(&admin, "demo").await;
    let roles: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        "demo",
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(rbac::GROUP, "v1", "Role"), "roles"),
    );
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "bad"},
        "rules": [{"apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
    }))
    .unwrap();
    let (code, reason, message) = status(roles.create(&PostParams::default(), &bad).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        message,
        r#"Role.rbac.authorization.k8s.io "bad" is invalid: [rules[0].verbs: Required value: verbs must contain at least one value, rules[1].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs]"#
    );

    // Subjects get their apiGroup defaulted; a roleRef cannot change.
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "demo");
    let b: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "b"},
        "roleRef": {"apiGroup": "", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}]}))
    .unwrap();
    let created = bindings.create(&PostParams::default(), &b).await.unwrap();
    assert_eq!(created.role_ref.api_group, rbac::GROUP);
    assert_eq!(
        created.subjects.unwrap()[0].api_group.as_deref(),
        Some(rbac::GROUP)
    );
    let change = Patch::Merge(json!({"roleRef": {"name": "edit"}}));
    let (code, _, message) = status(bindings.patch("b", &PatchParams::default(), &change).await);
    assert_eq!(code, 422);
    assert_eq!(
        message,
        r#"RoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef"#
    );
}
