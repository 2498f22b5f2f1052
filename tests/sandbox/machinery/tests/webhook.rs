//! Admission webhooks over real HTTPS: a tiny rustls webhook server with an rcgen CA.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use volops_sandbox_machinery::{
    AdmissionAttributes, AllowAll, ApiError, Authorizer, Dispatcher, ObjectLookup, Operation, UserInfo,
};

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

struct Hook {
    addr: SocketAddr,
    ca_b64: String,
    seen: Seen,
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn new_ca() -> (CertifiedIssuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let pem = ca.pem();
    (ca, b64(pem.as_bytes()))
}

/// How the test webhook answers a review request on `path`.
fn answer(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let uid = req["uid"].clone();
    let labels = req["object"]["metadata"]["labels"].clone();
    let patch = |ops: Value| b64(ops.to_string().as_bytes());
    let resp = match path {
        "/allow" => json!({"uid": uid, "allowed": true, "warnings": ["careful", "really"]}),
        "/deny403" => {
            json!({"uid": uid, "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": "volume too small"}})
        }
        "/deny200" => json!({"uid": uid, "allowed": false, "status": {"code": 200, "message": "nope"}}),
        "/deny-empty" => json!({"uid": uid, "allowed": false}),
        "/label-a" => json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
            "patch": patch(json!([{"op": "add", "path": "/metadata/labels/a", "value": "1"}]))}),
        // Only valid after /label-a ran: proves later hooks see earlier patches.
        "/label-b" if labels.get("a").is_some() => {
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
            "patch": patch(json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]))})
        }
        "/label-b" => json!({"uid": uid, "allowed": false, "status": {"message": "label a missing"}}),
        "/bad-uid" => json!({"uid": "not-the-uid", "allowed": true}),
        "/patch-no-type" => json!({"uid": uid, "allowed": true, "patch": patch(json!([]))}),
        "/bad-patch" => json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
            "patch": b64(b"not a patch")}),
        _ => json!({"uid": uid, "allowed": true}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
}

async fn start_hook(names: &[&str]) -> Hook {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (ca, ca_b64) = new_ca();
    let leaf_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let leaf = CertificateParams::new(sans)
        .and_then(|p| p.signed_by(&leaf_key, &ca))
        .unwrap_or_else(|e| panic!("{e}"));
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap_or_else(|e| panic!("{e}"));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let query = req.uri().query().unwrap_or("").to_string();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if let Ok(mut s) = seen.lock() {
                            s.push((format!("{path}?{query}"), review.clone()));
                        }
                        if path == "/slow" {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                        }
                        let out = answer(&path, &review).to_string();
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(out))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Hook { addr, ca_b64, seen }
}

impl Hook {
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }
    fn calls(&self) -> Vec<(String, Value)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[derive(Default)]
struct Store(Vec<Value>); // namespaces only

impl ObjectLookup for Store {
    fn get(&self, _g: &str, resource: &str, _ns: Option<&str>, name: &str) -> Option<Value> {
        (resource == "namespaces").then(|| self.0.iter().find(|o| o["metadata"]["name"] == name).cloned())?
    }
    fn list(&self, _g: &str, _r: &str, _ns: Option<&str>) -> Vec<Value> {
        self.0.clone()
    }
}

fn allow() -> Arc<dyn Authorizer> {
    Arc::new(AllowAll)
}

fn store() -> Store {
    Store(vec![
        json!({"metadata": {"name": "db", "labels": {"volops.io/enabled": "true"}}}),
        json!({"metadata": {"name": "kube-system", "labels": {}}}),
    ])
}

fn pvc_attrs(op: Operation, ns: &str) -> AdmissionAttributes {
    let obj = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-0", "namespace": ns, "labels": {"app": "redis"}},
        "spec": {"resources": {"requests": {"storage": "1Gi"}}}});
    AdmissionAttributes {
        operation: op,
        group: String::new(),
        version: "v1".into(),
        kind: "PersistentVolumeClaim".into(),
        resource: "persistentvolumeclaims".into(),
        subresource: String::new(),
        name: "data-0".into(),
        namespace: Some(ns.into()),
        object: Some(obj.clone()),
        old_object: (op == Operation::Update).then_some(obj),
        dry_run: false,
        user: UserInfo {
            username: "alice".into(),
            groups: vec!["system:authenticated".into()],
            ..UserInfo::default()
        },
        options: Some(json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"})),
    }
}

fn hook_json(name: &str, client: Value, extra: Value) -> Value {
    let mut h = json!({"name": name, "clientConfig": client, "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": ["persistentvolumeclaims"]}]});
    if let (Some(h), Some(e)) = (h.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            h.insert(k.clone(), v.clone());
        }
    }
    h
}

fn url_hook(hook: &Hook, name: &str, path: &str, extra: Value) -> Value {
    hook_json(
        name,
        json!({"url": hook.url(path), "caBundle": hook.ca_b64}),
        extra,
    )
}

fn config(name: &str, hooks: Vec<Value>) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "metadata": {"name": name}, "webhooks": hooks})
}

async fn validate(configs: &[Value], attrs: &AdmissionAttributes) -> Result<Vec<String>, ApiError> {
    Dispatcher::new()
        .validate(configs, attrs, &store(), &allow())
        .await
}

#[tokio::test]
async fn validating_allow_sends_full_review_and_returns_warnings() {
    let hook = start_hook(&["localhost"]).await;
    let cfg = config("v", vec![url_hook(&hook, "allow.volops.io", "/allow", json!({}))]);
    let warnings = validate(&[cfg], &pvc_attrs(Operation::Update, "db")).await;
    assert_eq!(warnings, Ok(vec!["careful".to_string(), "really".to_string()]));
    let calls = hook.calls();
    assert_eq!(calls.len(), 1);
    let (path, review) = &calls[0];
    assert_eq!(path, "/allow?timeout=10s");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    let r = &review["request"];
    assert_eq!(r["uid"].as_str().map(str::len), Some(36));
    assert_eq!(
        r["kind"],
        json!({"group": "", "version": "v1", "kind": "PersistentVolumeClaim"})
    );
    assert_eq!(
        r["resource"],
        json!({"group": "", "version": "v1", "resource": "persistentvolumeclaims"})
    );
    assert_eq!(r["requestResource"], r["resource"]);
    assert_eq!(
        (
            r["name"].as_str(),
            r["namespace"].as_str(),
            r["operation"].as_str()
        ),
        (Some("data-0"), Some("db"), Some("UPDATE"))
    );
    assert_eq!(
        r["userInfo"],
        json!({"username": "alice", "groups": ["system:authenticated"]})
    );
    assert_eq!(r["object"]["metadata"]["name"], "data-0");
    assert_eq!(r["oldObject"]["metadata"]["name"], "data-0");
    assert_eq!(r["dryRun"], false);
    assert_eq!(r["options"]["kind"], "UpdateOptions");
}

#[tokio::test]
async fn denials_read_like_kube_apiserver() {
    let hook = start_hook(&["localhost"]).await;
    let deny = |path: &str| {
        vec![config(
            "v",
            vec![url_hook(&hook, "deny.volops.io", path, json!({}))],
        )]
    };
    let attrs = pvc_attrs(Operation::Create, "db");
    let e = validate(&deny("/deny403"), &attrs)
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "admission webhook \"deny.volops.io\" denied the request: volume too small"
    );
    let e = validate(&deny("/deny200"), &attrs)
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            400,
            "admission webhook \"deny.volops.io\" denied the request: nope"
        )
    );
    let e = validate(&deny("/deny-empty"), &attrs)
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!(
        e.message,
        "admission webhook \"deny.volops.io\" denied the request without explanation"
    );
    assert_eq!(e.to_status_json()["code"], 400);
}

#[tokio::test]
async fn mutating_hooks_run_in_name_order_and_see_earlier_patches() {
    let hook = start_hook(&["localhost"]).await;
    // Listed out of order: configuration "a" must run before "b".
    let configs = vec![
        config("b", vec![url_hook(&hook, "b.volops.io", "/label-b", json!({}))]),
        config(
            "a",
            vec![
                url_hook(&hook, "a.volops.io", "/label-a", json!({})),
                url_hook(&hook, "a2.volops.io", "/allow", json!({})),
            ],
        ),
    ];
    let (obj, warnings) = Dispatcher::new()
        .mutate(&configs, &pvc_attrs(Operation::Create, "db"), &store(), &allow())
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(
        obj["metadata"]["labels"],
        json!({"app": "redis", "a": "1", "b": "2"})
    );
    assert_eq!(warnings.len(), 2);
    let order: Vec<String> = hook.calls().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        order,
        vec![
            "/label-a?timeout=10s",
            "/allow?timeout=10s",
            "/label-b?timeout=10s"
        ]
    );
}

#[tokio::test]
async fn rules_and_selectors_decide_who_is_called() {
    let hook = start_hook(&["localhost"]).await;
    let mk = |name: &str, extra: Value| url_hook(&hook, name, "/deny403", extra);
    let not_matching = vec![config(
        "v",
        vec![
            mk(
                "ops",
                json!({"rules": [{"operations": ["DELETE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}),
            ),
            mk(
                "group",
                json!({"rules": [{"operations": ["*"], "apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["*"]}]}),
            ),
            mk(
                "sub",
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["*"], "resources": ["persistentvolumeclaims/status"]}]}),
            ),
            mk(
                "exact",
                json!({"matchPolicy": "Exact", "rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v2"], "resources": ["*"]}]}),
            ),
            mk(
                "scope",
                json!({"rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"}]}),
            ),
            mk(
                "ns",
                json!({"namespaceSelector": {"matchExpressions": [{"key": "volops.io/enabled", "operator": "In", "values": ["false"]}]}}),
            ),
            mk(
                "obj",
                json!({"objectSelector": {"matchLabels": {"app": "zookeeper"}}}),
            ),
        ],
    )];
    assert_eq!(
        validate(&not_matching, &pvc_attrs(Operation::Create, "db")).await,
        Ok(vec![])
    );
    assert!(hook.calls().is_empty());
    // Equivalent (default) ignores the version; "*" and the namespace label select it.
    let matching = vec![config(
        "v",
        vec![mk(
            "m",
            json!({
        "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["v2"], "resources": ["*"], "scope": "Namespaced"}],
        "namespaceSelector": {"matchLabels": {"volops.io/enabled": "true"}},
        "objectSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]}}),
        )],
    )];
    assert_eq!(
        validate(&matching, &pvc_attrs(Operation::Create, "db"))
            .await
            .map_err(|e| e.code),
        Err(403)
    );
    assert_eq!(
        validate(&matching, &pvc_attrs(Operation::Create, "kube-system")).await,
        Ok(vec![])
    );
    // "*" does not cover subresources, "*/*" and "x/status" do.
    let mut status = pvc_attrs(Operation::Update, "db");
    status.subresource = "status".into();
    assert_eq!(validate(&matching, &status).await, Ok(vec![]));
    let sub = vec![config(
        "v",
        vec![mk(
            "s",
            json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["persistentvolumeclaims/status"]}]}),
        )],
    )];
    assert_eq!(validate(&sub, &status).await.map_err(|e| e.code), Err(403));
    let all = vec![config(
        "v",
        vec![mk(
            "s",
            json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}]}),
        )],
    )];
    assert_eq!(validate(&all, &status).await.map_err(|e| e.code), Err(403));
    assert_eq!(hook.calls().len(), 3);
    // Webhook configurations themselves are never sent to webhooks.
    let mut whc = pvc_attrs(Operation::Create, "db");
    whc.group = "admissionregistration.k8s.io".into();
    whc.resource = "validatingwebhookconfigurations".into();
    whc.namespace = None;
    assert_eq!(validate(&all, &whc).await, Ok(vec![]));
}

#[tokio::test]
async fn call_failures_follow_failure_policy() {
    let hook = start_hook(&["localhost"]).await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    let unreachable = |policy: &str| {
        vec![config(
            "v",
            vec![hook_json(
                "down.volops.io",
                json!({"url": format!("https://localhost:{}/x", closed.port()), "caBundle": hook.ca_b64}),
                json!({"failurePolicy": policy}),
            )],
        )]
    };
    let attrs = pvc_attrs(Operation::Create, "db");
    let e = validate(&unreachable("Fail"), &attrs)
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    let prefix = format!(
        "Internal error occurred: failed calling webhook \"down.volops.io\": failed to call webhook: Post \"https://localhost:{}/x?timeout=10s\": ",
        closed.port()
    );
    assert!(e.message.starts_with(&prefix), "{}", e.message);
    assert_eq!(validate(&unreachable("Ignore"), &attrs).await, Ok(vec![]));
    // Default failurePolicy is Fail.
    let default = vec![config(
        "v",
        vec![hook_json(
            "down.volops.io",
            json!({"url": format!("https://localhost:{}/x", closed.port())}),
            json!({}),
        )],
    )];
    assert_eq!(validate(&default, &attrs).await.map_err(|e| e.code), Err(500));
}

#[tokio::test]
async fn timeout_applies_failure_policy() {
    let hook = start_hook(&["localhost"]).await;
    let slow = |policy: &str| {
        vec![config(
            "v",
            vec![url_hook(
                &hook,
                "slow.volops.io",
                "/slow",
                json!({"timeoutSeconds": 1, "failurePolicy": policy}),
            )],
        )]
    };
    let attrs = pvc_attrs(Operation::Create, "db");
    let e = validate(&slow("Fail"), &attrs)
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!(e.code, 500);
    assert!(
        e.message
            .contains("/slow?timeout=1s\": context deadline exceeded"),
        "{}",
        e.message
    );
    assert_eq!(validate(&slow("Ignore"), &attrs).await, Ok(vec![]));
}

#[tokio::test]
async fn invalid_responses_are_call_errors() {
    let hook = start_hook(&["localhost"]).await;
    let attrs = pvc_attrs(Operation::Create, "db");
    let one = |path: &str| vec![config("v", vec![url_hook(&hook, "h.volops.io", path, json!({}))])];
    let e = validate(&one("/bad-uid"), &attrs)
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(e.starts_with("Internal error occurred: failed calling webhook \"h.volops.io\": received invalid webhook response: expected response.uid=\""), "{e}");
    assert!(e.ends_with(", got \"not-the-uid\""), "{e}");
    let e = validate(&one("/label-a"), &attrs)
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert_eq!(
        e,
        "Internal error occurred: failed calling webhook \"h.volops.io\": received invalid webhook response: validating webhook may not return response.patch"
    );
    let e = Dispatcher::new()
        .mutate(&one("/patch-no-type"), &attrs, &store(), &allow())
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        e.ends_with("webhook returned response.patch but not response.patchType"),
        "{e}"
    );
    let ignored = vec![config(
        "v",
        vec![url_hook(
            &hook,
            "h.volops.io",
            "/bad-uid",
            json!({"failurePolicy": "Ignore"}),
        )],
    )];
    assert_eq!(validate(&ignored, &attrs).await, Ok(vec![]));
}

#[tokio::test]
async fn only_ca_bundle_is_trusted() {
    let hook = start_hook(&["localhost"]).await;
    let (_, other_ca) = new_ca();
    let attrs = pvc_attrs(Operation::Create, "db");
    let wrong = vec![config(
        "v",
        vec![hook_json(
            "tls.volops.io",
            json!({"url": hook.url("/allow"), "caBundle": other_ca}),
            json!({}),
        )],
    )];
    let e = validate(&wrong, &attrs)
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        e.starts_with(
            "Internal error occurred: failed calling webhook \"tls.volops.io\": failed to call webhook: Post"
        ),
        "{e}"
    );
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert!(hook.calls().is_empty());
}

#[tokio::test]
async fn service_references_use_the_resolver_and_svc_name() {
    let hook = start_hook(&["volops-webhook.volops.svc"]).await;
    let cfg = vec![config(
        "v",
        vec![hook_json(
            "svc.volops.io",
            json!({"service": {"namespace": "volops", "name": "volops-webhook", "path": "/allow", "port": 8443}, "caBundle": hook.ca_b64}),
            json!({}),
        )],
    )];
    let attrs = pvc_attrs(Operation::Create, "db");
    let d = Dispatcher::new();
    let e = d
        .validate(&cfg, &attrs, &store(), &allow())
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(e.contains("service \"volops/volops-webhook\" not found"), "{e}");
    let addr = hook.addr;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    d.set_service_resolver(Arc::new(move |ns: &str, name: &str, port: u16| {
        if let Ok(mut a) = asked2.lock() {
            a.push(format!("{ns}/{name}:{port}"));
        }
        (ns == "volops" && name == "volops-webhook").then_some(addr)
    }));
    assert_eq!(
        d.validate(&cfg, &attrs, &store(), &allow())
            .await
            .map(|w| w.len()),
        Ok(2)
    );
    assert_eq!(
        asked.lock().map(|a| a.clone()).unwrap_or_default(),
        vec!["volops/volops-webhook:8443"]
    );
}

#[tokio::test]
async fn dry_run_needs_side_effect_free_hooks() {
    let hook = start_hook(&["localhost"]).await;
    let mut attrs = pvc_attrs(Operation::Create, "db");
    attrs.dry_run = true;
    let some = vec![config(
        "v",
        vec![url_hook(
            &hook,
            "fx.volops.io",
            "/allow",
            json!({"sideEffects": "Some"}),
        )],
    )];
    let e = validate(&some, &attrs)
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("x"));
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "admission webhook \"fx.volops.io\" does not support dry run")
    );
    let none = vec![config(
        "v",
        vec![url_hook(
            &hook,
            "fx.volops.io",
            "/allow",
            json!({"sideEffects": "NoneOnDryRun"}),
        )],
    )];
    assert!(validate(&none, &attrs).await.is_ok());
    assert_eq!(
        hook.calls().first().map(|(_, r)| r["request"]["dryRun"].clone()),
        Some(json!(true))
    );
    // A hook stored without sideEffects fails the call, subject to failurePolicy.
    let unset = |policy: &str| {
        let mut h = url_hook(&hook, "fx.volops.io", "/allow", json!({"failurePolicy": policy}));
        h.as_object_mut().map(|m| m.remove("sideEffects"));
        vec![config("v", vec![h])]
    };
    let e = validate(&unset("Fail"), &attrs)
        .await
        .err()
        .map(|e| (e.code, e.message));
    assert_eq!(
        e,
        Some((
            500,
            "Internal error occurred: failed calling webhook \"fx.volops.io\": Webhook SideEffects is nil"
                .to_string()
        ))
    );
    assert_eq!(validate(&unset("Ignore"), &attrs).await, Ok(vec![]));
    assert_eq!(hook.calls().len(), 1);
}

/// The server awaits these inside axum handlers, which need `Send` futures (a compile check).
#[test]
fn dispatcher_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (d, s, a, configs) = (
        Dispatcher::new(),
        store(),
        pvc_attrs(Operation::Create, "db"),
        Vec::<Value>::new(),
    );
    let az = allow();
    assert_send(&d.validate(&configs, &a, &s, &az));
    assert_send(&d.mutate(&configs, &a, &s, &az));
}

fn labels_seen(hook: &Hook) -> Vec<(String, Value)> {
    hook.calls()
        .into_iter()
        .map(|(p, r)| (p, r["request"]["object"]["metadata"]["labels"].clone()))
        .collect()
}

#[tokio::test]
async fn if_needed_hooks_run_again_after_a_later_change() {
    let hook = start_hook(&["localhost"]).await;
    let configs = |policy: &str| {
        vec![config(
            "m",
            vec![
                url_hook(
                    &hook,
                    "a.volops.io",
                    "/label-a",
                    json!({"reinvocationPolicy": policy}),
                ),
                // Matches only once b is set: never called for the first time on reinvocation.
                url_hook(
                    &hook,
                    "c.volops.io",
                    "/allow",
                    json!({"reinvocationPolicy": "IfNeeded", "objectSelector": {"matchLabels": {"b": "2"}}}),
                ),
                url_hook(
                    &hook,
                    "b.volops.io",
                    "/label-b",
                    json!({"reinvocationPolicy": "IfNeeded"}),
                ),
            ],
        )]
    };
    let attrs = pvc_attrs(Operation::Create, "db");
    let (obj, _) = Dispatcher::new()
        .mutate(&configs("IfNeeded"), &attrs, &store(), &allow())
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(
        obj["metadata"]["labels"],
        json!({"app": "redis", "a": "1", "b": "2"})
    );
    // a changed the object before b ran, so only a is asked again, and sees b's label;
    // b changed nothing after it ran, so it is not asked again.
    assert_eq!(
        labels_seen(&hook),
        vec![
            ("/label-a?timeout=10s".to_string(), json!({"app": "redis"})),
            (
                "/label-b?timeout=10s".to_string(),
                json!({"app": "redis", "a": "1"})
            ),
            (
                "/label-a?timeout=10s".to_string(),
                json!({"app": "redis", "a": "1", "b": "2"})
            ),
        ]
    );
    let hook2 = start_hook(&["localhost"]).await;
    let never = vec![config(
        "m",
        vec![
            url_hook(
                &hook2,
                "a.volops.io",
                "/label-a",
                json!({"reinvocationPolicy": "Never"}),
            ),
            url_hook(&hook2, "b.volops.io", "/label-b", json!({})),
        ],
    )];
    Dispatcher::new()
        .mutate(&never, &attrs, &store(), &allow())
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(hook2.calls().len(), 2);
}

#[tokio::test]
async fn patches_on_delete_and_undecodable_patches_fail_like_kube() {
    let hook = start_hook(&["localhost"]).await;
    let mut delete = pvc_attrs(Operation::Update, "db");
    delete.operation = Operation::Delete;
    delete.object = None;
    let rules = json!({"rules": [{"operations": ["DELETE", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["persistentvolumeclaims"]}]});
    let one = |path: &str, extra: Value| {
        let mut e = rules.clone();
        if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        vec![config("m", vec![url_hook(&hook, "p.volops.io", path, e)])]
    };
    let e = Dispatcher::new()
        .mutate(
            &one("/label-a", json!({"failurePolicy": "Ignore"})),
            &delete,
            &store(),
            &allow(),
        )
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            500,
            "Internal error occurred: admission webhook \"p.volops.io\" attempted to modify the object, which is not supported for this operation"
        )
    );
    let create = pvc_attrs(Operation::Create, "db");
    let e = Dispatcher::new()
        .mutate(&one("/bad-patch", json!({})), &create, &store(), &allow())
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(
        e.starts_with("Internal error occurred: failed calling webhook \"p.volops.io\": received undecodable patch in webhook response: "),
        "{e}"
    );
    let ignored = Dispatcher::new()
        .mutate(
            &one("/bad-patch", json!({"failurePolicy": "Ignore"})),
            &create,
            &store(),
            &allow(),
        )
        .await
        .map(|(o, _)| o["metadata"]["labels"].clone());
    assert_eq!(ignored, Ok(json!({"app": "redis"})));
}

#[tokio::test]
async fn match_conditions_decide_after_rules_and_errors_follow_failure_policy() {
    let hook = start_hook(&["localhost"]).await;
    const NOT_CONTROLLER: &str =
        "request.userInfo.username != 'system:serviceaccount:volops-system:volops-controller'";
    let with = |conditions: Value, extra: Value| {
        let mut e = json!({"matchConditions": conditions});
        if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        vec![config("v", vec![url_hook(&hook, "c.volops.io", "/deny403", e)])]
    };
    let alice = pvc_attrs(Operation::Create, "db");
    let mut controller = alice.clone();
    controller.user.username = "system:serviceaccount:volops-system:volops-controller".into();
    let not_ctrl = with(
        json!([{"name": "not-controller", "expression": NOT_CONTROLLER}]),
        json!({}),
    );
    assert_eq!(validate(&not_ctrl, &alice).await.map_err(|e| e.code), Err(403));
    assert_eq!(validate(&not_ctrl, &controller).await, Ok(vec![]));
    assert_eq!(hook.calls().len(), 1);

    // An evaluation error: Fail rejects with kube's Forbidden, Ignore skips the hook.
    let broken = json!([{"name": "ok", "expression": "true"},
        {"name": "tier", "expression": "object.metadata.labels.tier == 'db'"}]);
    let e = validate(&with(broken.clone(), json!({"failurePolicy": "Fail"})), &alice)
        .await
        .err()
        .unwrap_or_else(|| ApiError::bad_request("allowed"));
    assert_eq!(
        (e.code, e.reason.as_str(), e.message.as_str()),
        (
            403,
            "Forbidden",
            "persistentvolumeclaims \"data-0\" is forbidden: expression 'object.metadata.labels.tier == 'db'' resulted in error: no such key: tier"
        )
    );
    assert_eq!(
        validate(&with(broken, json!({"failurePolicy": "Ignore"})), &alice).await,
        Ok(vec![])
    );
    // Two errors are aggregated in brackets.
    let two =
        json!([{"name": "a", "expression": "object.x == 1"}, {"name": "b", "expression": "object.y == 1"}]);
    let e = validate(&with(two, json!({})), &alice)
        .await
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert_eq!(
        e,
        "persistentvolumeclaims \"data-0\" is forbidden: [expression 'object.x == 1' resulted in error: no such key: x, expression 'object.y == 1' resulted in error: no such key: y]"
    );
    // Any false condition skips the hook even when another errs.
    let mixed =
        json!([{"name": "err", "expression": "object.x == 1"}, {"name": "no", "expression": "false"}]);
    assert_eq!(validate(&with(mixed, json!({})), &alice).await, Ok(vec![]));
    // Conditions are not evaluated when the rules do not match.
    let mut other = alice.clone();
    other.resource = "configmaps".into();
    let erring = with(json!([{"name": "err", "expression": "object.x == 1"}]), json!({}));
    assert_eq!(validate(&erring, &other).await, Ok(vec![]));
    assert_eq!(hook.calls().len(), 1);
    // The mutating side evaluates them too.
    let (obj, _) = Dispatcher::new()
        .mutate(
            &[config(
                "m",
                vec![url_hook(
                    &hook,
                    "m.volops.io",
                    "/label-a",
                    json!({"matchConditions": [{"name": "n", "expression": NOT_CONTROLLER}]}),
                )],
            )],
            &controller,
            &store(),
            &allow(),
        )
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(obj["metadata"]["labels"], json!({"app": "redis"}));
}

#[tokio::test]
async fn selector_errors_only_count_when_the_rules_match() {
    let hook = start_hook(&["localhost"]).await;
    // The namespace "gone" does not exist: 404 when the hook applies, nothing otherwise.
    let cfg = vec![config(
        "v",
        vec![url_hook(
            &hook,
            "ns.volops.io",
            "/allow",
            json!({"namespaceSelector": {"matchLabels": {"x": "y"}}}),
        )],
    )];
    let e = validate(&cfg, &pvc_attrs(Operation::Create, "gone"))
        .await
        .map_err(|e| (e.code, e.message));
    assert_eq!(e, Err((404, "namespaces \"gone\" not found".to_string())));
    let mut other = pvc_attrs(Operation::Create, "gone");
    other.resource = "configmaps".into();
    assert_eq!(validate(&cfg, &other).await, Ok(vec![]));
    // Cluster-scoped objects are never exempted by a namespaceSelector.
    let mut cluster = pvc_attrs(Operation::Create, "db");
    cluster.namespace = None;
    let any = vec![config(
        "v",
        vec![url_hook(
            &hook,
            "ns.volops.io",
            "/deny403",
            json!({"namespaceSelector": {"matchLabels": {"x": "y"}},
                   "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}),
        )],
    )];
    assert_eq!(validate(&any, &cluster).await.map_err(|e| e.code), Err(403));
}
