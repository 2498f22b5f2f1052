//! Admission as kube-apiserver runs it, end to end over HTTPS with a webhook that records the
//! reviews it gets: matchConditions (CEL) per user, failurePolicy for down hooks and CEL
//! errors, reinvocation, the review's userInfo/options/oldObject, dry-run, selectors, and
//! webhook configurations validated and defaulted on write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{CONTROLLER, cm, controller_client, recorder, start, status, tenant_client};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const NOT_CONTROLLER: &str =
    "request.userInfo.username != 'system:serviceaccount:volops-system:volops-controller'";

fn configmap_rules(ops: Value) -> Value {
    json!([{"operations": ops, "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}])
}

fn hook(name: &str, client: Value, extra: Value) -> Value {
    let mut h = json!({"name": name, "clientConfig": client, "sideEffects": "None",
        "admissionReviewVersions": ["v1"], "rules": configmap_rules(json!(["CREATE", "UPDATE"]))});
    h.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    h
}

async fn validating(
    client: &kube::Client,
    name: &str,
    hooks: Vec<Value>,
) -> Result<ValidatingWebhookConfiguration, kube::Error> {
    let cfg = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": hooks});
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(cfg).unwrap())
        .await
}

async fn mutating(client: &kube::Client, name: &str, hooks: Vec<Value>) -> MutatingWebhookConfiguration {
    let cfg = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": hooks});
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &serde_json::from_value(cfg).unwrap())
        .await
        .unwrap()
}

/// A URL nothing listens on.
async fn closed_url() -> String {
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    format!("https://{addr}/validate")
}

#[tokio::test]
async fn match_conditions_keep_the_controller_off_the_webhook() {
    let (sb, admin) = start().await;
    let rec = recorder::start().await;
    let condition = json!([{"name": "not-the-controller", "expression": NOT_CONTROLLER}]);
    validating(
        &admin,
        "volops",
        vec![hook(
            "cm.validate.volops.dev",
            rec.client_config("allow"),
            json!({"matchConditions": condition}),
        )],
    )
    .await
    .unwrap();
    let (alice, controller) = (tenant_client(&sb).await, controller_client(&sb).await);
    Api::<ConfigMap>::namespaced(alice.clone(), "default")
        .create(&PostParams::default(), &cm("by-alice"))
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(controller.clone(), "default")
        .create(&PostParams::default(), &cm("by-controller"))
        .await
        .unwrap();
    let seen = rec.requests("allow");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["name"], "by-alice");
    assert_eq!(
        seen[0]["userInfo"],
        json!({"username": "alice", "groups": ["tenants", "system:authenticated"]})
    );

    // The hook goes down, failurePolicy Fail: alice is refused, the controller is not.
    let down = json!({"url": closed_url().await});
    let mut cfg: Value = serde_json::to_value(
        Api::<ValidatingWebhookConfiguration>::all(admin.clone())
            .get("volops")
            .await
            .unwrap(),
    )
    .unwrap();
    cfg["webhooks"][0]["clientConfig"] = down;
    Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .replace(
            "volops",
            &PostParams::default(),
            &serde_json::from_value(cfg).unwrap(),
        )
        .await
        .unwrap();
    let (code, reason, msg) = status(
        Api::<ConfigMap>::namespaced(alice, "default")
            .create(&PostParams::default(), &cm("refused"))
            .await,
    );
    assert_eq!((code, reason.as_str()), (500, "InternalError"), "{msg}");
    assert!(
        msg.starts_with("Internal error occurred: failed calling webhook \"cm.validate.volops.dev\": failed to call webhook: Post \"https://127.0.0.1:"),
        "{msg}"
    );
    assert!(
        msg.ends_with("/validate?timeout=10s\": dial tcp: connect: connection refused"),
        "{msg}"
    );
    Api::<ConfigMap>::namespaced(controller, "default")
        .create(&PostParams::default(), &cm("still-works"))
        .await
        .unwrap();
}

#[tokio::test]
async fn cel_errors_follow_failure_policy() {
    let (sb, admin) = start().await;
    let rec = recorder::start().await;
    let erring = json!([{"name": "tier", "expression": "object.metadata.labels.tier == 'db'"}]);
    validating(
        &admin,
        "fail",
        vec![hook(
            "fail.volops.dev",
            rec.client_config("allow"),
            json!({"matchConditions": erring, "failurePolicy": "Fail",
            "objectSelector": {"matchLabels": {"policy": "fail"}}}),
        )],
    )
    .await
    .unwrap();
    validating(
        &admin,
        "ignore",
        vec![hook(
            "ignore.volops.dev",
            rec.client_config("allow"),
            json!({"matchConditions": erring, "failurePolicy": "Ignore",
            "objectSelector": {"matchLabels": {"policy": "ignore"}}}),
        )],
    )
    .await
    .unwrap();
    let cms = Api::<ConfigMap>::namespaced(tenant_client(&sb).await, "default");
    let labelled = |name: &str, policy: &str| {
        let mut c = cm(name);
        c.metadata.labels = Some([("policy".to_string(), policy.to_string())].into());
        c
    };
    let (code, reason, msg) = status(cms.create(&PostParams::default(), &labelled("f", "fail")).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        msg,
        "configmaps \"f\" is forbidden: expression 'object.metadata.labels.tier == 'db'' resulted in error: no such key: tier"
    );
    cms.create(&PostParams::default(), &labelled("i", "ignore"))
        .await
        .unwrap();
    assert!(rec.paths().is_empty(), "{:?}", rec.paths());
    // With the label present the condition evaluates and the hook is called.
    let mut tiered = labelled("t", "fail");
    tiered
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "db".into());
    cms.create(&PostParams::default(), &tiered).await.unwrap();
    assert_eq!(rec.paths(), vec!["allow"]);
}

#[tokio::test]
async fn webhook_configurations_are_validated_and_defaulted_on_write() {
    let (_sb, admin) = start().await;
    let rec = recorder::start().await;
    let bad = hook(
        "bad.volops.dev",
        rec.client_config("allow"),
        json!({"matchConditions": [{"name": "typo", "expression": "request.userInfo.usrname == 'x'"}],
               "timeoutSeconds": 31}),
    );
    let (code, reason, msg) = status(validating(&admin, "bad", vec![bad]).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert_eq!(
        msg,
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"bad\" is invalid: [webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds, webhooks[0].matchConditions[0].expression: Invalid value: \"request.userInfo.usrname == 'x'\": compilation failed: ERROR: <input>:1:17: undefined field 'usrname'\n | request.userInfo.usrname == 'x'\n | ................^]"
    );
    let effects = hook(
        "fx.volops.dev",
        rec.client_config("allow"),
        json!({"sideEffects": "Some"}),
    );
    let (code, _, msg) = status(validating(&admin, "fx", vec![effects]).await);
    assert_eq!(code, 422);
    assert!(
        msg.ends_with("webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\""),
        "{msg}"
    );
    let created = validating(
        &admin,
        "ok",
        vec![hook("ok.volops.dev", rec.client_config("allow"), json!({}))],
    )
    .await
    .unwrap();
    let h: Value = serde_json::to_value(&created.webhooks.unwrap()[0]).unwrap();
    assert_eq!(
        (
            &h["failurePolicy"],
            &h["matchPolicy"],
            &h["timeoutSeconds"],
            &h["namespaceSelector"],
            &h["rules"][0]["scope"]
        ),
        (
            &json!("Fail"),
            &json!("Equivalent"),
            &json!(10),
            &json!({}),
            &json!("*")
        )
    );
}

#[tokio::test]
async fn if_needed_hooks_are_reinvoked_after_later_mutations() {
    let (_sb, admin) = start().await;
    let rec = recorder::start().await;
    mutating(
        &admin,
        "volops",
        vec![
            hook(
                "a.mutate.volops.dev",
                rec.client_config("label-a"),
                json!({"reinvocationPolicy": "IfNeeded"}),
            ),
            hook("b.mutate.volops.dev", rec.client_config("label-b"), json!({})),
        ],
    )
    .await;
    let c = Api::<ConfigMap>::namespaced(admin, "default")
        .create(&PostParams::default(), &cm("m"))
        .await
        .unwrap();
    let labels = c.metadata.labels.unwrap();
    assert_eq!((labels["a"].as_str(), labels["b"].as_str()), ("1", "2"));
    assert_eq!(rec.paths(), vec!["label-a", "label-b", "label-a"]);
    assert_eq!(
        rec.requests("label-a")[1]["object"]["metadata"]["labels"]["b"],
        "2"
    );
}

#[tokio::test]
async fn reviews_carry_user_options_old_object_and_dry_run() {
    let (sb, admin) = start().await;
    let rec = recorder::start().await;
    validating(
        &admin,
        "rec",
        vec![hook(
            "rec.volops.dev",
            rec.client_config("allow"),
            json!({"sideEffects": "NoneOnDryRun", "rules": configmap_rules(json!(["*"]))}),
        )],
    )
    .await
    .unwrap();
    let cms = Api::<ConfigMap>::namespaced(tenant_client(&sb).await, "default");
    let pp = PostParams {
        field_manager: Some("volops-test".into()),
        ..Default::default()
    };
    cms.create(&pp, &cm("r")).await.unwrap();
    cms.patch(
        "r",
        &PatchParams::apply("volops-apply").force(),
        &Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "r"}, "data": {"k": "w"}}),
        ),
    )
    .await
    .unwrap();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &cm("dry")).await.unwrap();
    cms.delete("r", &DeleteParams::default()).await.unwrap();
    let seen = rec.requests("allow");
    let ops: Vec<&str> = seen.iter().map(|r| r["operation"].as_str().unwrap()).collect();
    assert_eq!(ops, vec!["CREATE", "UPDATE", "CREATE", "DELETE"]);
    assert_eq!(
        seen[0]["options"],
        json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "volops-test"})
    );
    assert_eq!(seen[1]["options"]["kind"], "UpdateOptions");
    assert_eq!(seen[1]["options"]["fieldManager"], "volops-apply");
    assert_eq!(seen[1]["oldObject"]["data"]["k"], "v");
    assert_eq!(seen[1]["object"]["data"]["k"], "w");
    assert_eq!(
        (&seen[2]["dryRun"], &seen[2]["options"]["dryRun"]),
        (&json!(true), &json!(["All"]))
    );
    assert_eq!(seen[3]["options"]["kind"], "DeleteOptions");
    assert_eq!(seen[3]["oldObject"]["metadata"]["name"], "r");
    assert!(seen[3].get("object").is_none(), "{}", seen[3]);
    for r in &seen {
        assert_eq!(r["userInfo"]["username"], "alice");
    }
    assert_ne!(seen[0]["userInfo"]["username"], CONTROLLER);
}

#[tokio::test]
async fn selectors_see_the_namespace_itself_and_the_old_object() {
    let (_sb, admin) = start().await;
    let rec = recorder::start().await;
    let ns_rules = json!([{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["namespaces"]}]);
    validating(
        &admin,
        "sel",
        vec![
            hook(
                "ns.volops.dev",
                rec.client_config("allow"),
                json!({"rules": ns_rules,
                "namespaceSelector": {"matchLabels": {"team": "a"}}}),
            ),
            hook(
                "obj.volops.dev",
                rec.client_config("deny"),
                json!({"rules": configmap_rules(json!(["UPDATE"])),
                "objectSelector": {"matchLabels": {"guard": "on"}}}),
            ),
        ],
    )
    .await
    .unwrap();
    let nss = Api::<Namespace>::all(admin.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "t1"}})).unwrap(),
    )
    .await
    .unwrap();
    let label = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"team": v}}}));
    nss.patch("t1", &PatchParams::default(), &label("b"))
        .await
        .unwrap();
    assert!(rec.paths().is_empty());
    // The Namespace's new labels decide; its requests carry its name as namespace.
    nss.patch("t1", &PatchParams::default(), &label("a"))
        .await
        .unwrap();
    let seen = rec.requests("allow");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (&seen[0]["name"], &seen[0]["namespace"]),
        (&json!("t1"), &json!("t1"))
    );

    // Removing the guarded label is still judged: the old object matches.
    let cms = Api::<ConfigMap>::namespaced(admin, "default");
    let mut guarded = cm("g");
    guarded.metadata.labels = Some([("guard".to_string(), "on".to_string())].into());
    cms.create(&PostParams::default(), &guarded).await.unwrap();
    let (code, _, msg) = status(
        cms.patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"guard": null}}})),
        )
        .await,
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            403,
            "admission webhook \"obj.volops.dev\" denied the request: denied by the recorder"
        )
    );
}
