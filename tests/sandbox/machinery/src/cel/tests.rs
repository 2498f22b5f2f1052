use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::authz::{AllowAll, AuthzRequest, Decision};

const CONTROLLER: &str = "system:serviceaccount:volops-system:volops-controller";
const NOT_CONTROLLER: &str =
    "request.userInfo.username != 'system:serviceaccount:volops-system:volops-controller'";

fn compile_err(expr: &str) -> String {
    compile_match_condition(expr)
        .err()
        .unwrap_or_else(|| format!("{expr:?} compiled"))
}

#[test]
fn compile_accepts_what_kube_accepts() {
    for expr in [
        NOT_CONTROLLER,
        "'system:masters' in request.userInfo.groups",
        "request.operation == 'CREATE' && request.resource.resource == 'persistentvolumeclaims'",
        "!(request.resource.group == 'rbac.authorization.k8s.io' && request.resource.resource.startsWith('cluster'))",
        "has(object.metadata.labels) && 'app' in object.metadata.labels",
        "object.metadata.labels.all(k, k.startsWith('volops.dev/'))",
        "request.userInfo.groups.map(g, g.size()) == [1]",
        "request.userInfo.groups.filter(g, g.endsWith(':volops-system')).size() > 0",
        "request.userInfo.groups.exists_one(g, g.lowerAscii() == 'tenants')",
        "object.spec.replicas > 1.5",
        "request.dryRun",
        "oldObject == null",
        "request.options.fieldManager.split(':').join('-') == 'kubectl'",
        "strings.quote('a') == '\"a\"'",
        "authorizer.group('').resource('pods').namespace('demo').name('p').subresource('log').check('get').allowed()",
        "authorizer.requestResource.check('update').allowed()",
        "authorizer.path('/healthz').check('get').reason() == ''",
        "authorizer.serviceAccount('volops-system', 'volops-controller').group('').resource('pods').check('get').errored()",
        "type(object) == map",
        "request.userInfo.extra['scopes'].size() == 0",
    ] {
        assert!(
            compile_match_condition(expr).is_ok(),
            "{expr}: {}",
            compile_err(expr)
        );
    }
}

#[test]
fn compile_errors_read_like_kube() {
    let table = [
        ("object.metadata.name", "must evaluate to bool but got dyn"),
        ("1", "must evaluate to bool but got int"),
        (
            "request.userInfo.groups",
            "must evaluate to bool but got list(string)",
        ),
        (
            "request.userInfo.extra",
            "must evaluate to bool but got map(string, list(string))",
        ),
        (
            "request.foo == 'x'",
            "compilation failed: ERROR: <input>:1:8: undefined field 'foo'\n | request.foo == 'x'\n | .......^",
        ),
        (
            "has(request.userInfo.name)",
            "compilation failed: ERROR: <input>:1:4: undefined field 'name'\n | has(request.userInfo.name)\n | ...^",
        ),
        (
            "request.userInfo.username == 1",
            "compilation failed: ERROR: <input>:1:27: found no matching overload for '_==_' applied to '(string, int)'\n | request.userInfo.username == 1\n | ..........................^",
        ),
        (
            "params.x == 1",
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')\n | params.x == 1\n | ^",
        ),
        (
            "authorizer.group('').check('get').allowed()",
            "compilation failed: ERROR: <input>:1:27: found no matching overload for 'check' applied to 'kubernetes.authorization.GroupCheck.(string)'\n | authorizer.group('').check('get').allowed()\n | ..........................^",
        ),
        (
            "request.userInfo.groups.exists(g, g == 1)",
            "compilation failed: ERROR: <input>:1:37: found no matching overload for '_==_' applied to '(string, int)'\n | request.userInfo.groups.exists(g, g == 1)\n | ....................................^",
        ),
        (
            "1 == 1.0",
            "compilation failed: ERROR: <input>:1:3: found no matching overload for '_==_' applied to '(int, double)'\n | 1 == 1.0\n | ..^",
        ),
        (
            "request.operation.size",
            "compilation failed: ERROR: <input>:1:18: type 'string' does not support field selection\n | request.operation.size\n | .................^",
        ),
        (
            "nope(1)",
            "compilation failed: ERROR: <input>:1:5: undeclared reference to 'nope' (in container '')\n | nope(1)\n | ....^",
        ),
    ];
    for (expr, want) in table {
        assert_eq!(compile_err(expr), want, "{expr}");
    }
    let syntax = compile_err("object.x ==");
    assert!(
        syntax.starts_with(
            "compilation failed: ERROR: <input>:1:12: Syntax error: mismatched input '<EOF>' expecting"
        ),
        "{syntax}"
    );
    assert!(syntax.ends_with("\n | object.x ==\n | ...........^"), "{syntax}");
}

fn request(username: &str) -> Value {
    json!({
        "kind": {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"},
        "resource": {"group": "", "version": "v1", "resource": "persistentvolumeclaims"},
        "requestKind": {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"},
        "requestResource": {"group": "", "version": "v1", "resource": "persistentvolumeclaims"},
        "namespace": "demo", "operation": "CREATE",
        "userInfo": {"username": username, "groups": ["tenants", "system:authenticated"]},
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-create"},
    })
}

fn eval(expr: &str, act: &Activation) -> Result<bool, String> {
    compile_match_condition(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .evaluate(act)
}

#[test]
fn evaluation_sees_the_request_and_objects() {
    let obj = json!({"metadata": {"name": "data", "labels": {"app": "redis"}}, "spec": {"replicas": 3}});
    let alice = Activation::new(Some(&obj), None, &request("alice"));
    let controller = Activation::new(Some(&obj), None, &request(CONTROLLER));
    assert_eq!(eval(NOT_CONTROLLER, &alice), Ok(true));
    assert_eq!(eval(NOT_CONTROLLER, &controller), Ok(false));
    let table = [
        ("'tenants' in request.userInfo.groups", Ok(true)),
        ("request.options.fieldManager == 'kubectl-create'", Ok(true)),
        (
            "object.spec.replicas >= 3 && object.metadata.labels.app == 'redis'",
            Ok(true),
        ),
        ("oldObject == null", Ok(true)),
        ("has(object.metadata.annotations)", Ok(false)),
        (
            "request.name == 'x'",
            Err("expression 'request.name == 'x'' resulted in error: no such key: name".to_string()),
        ),
        (
            "object.metadata.labels.tier == 'db'",
            Err(
                "expression 'object.metadata.labels.tier == 'db'' resulted in error: no such key: tier"
                    .to_string(),
            ),
        ),
        (
            "object.spec.replicas / 0 == 1",
            Err("expression 'object.spec.replicas / 0 == 1' resulted in error: division by zero".to_string()),
        ),
    ];
    for (expr, want) in table {
        assert_eq!(eval(expr, &alice), want, "{expr}");
    }
    // A condition on a dyn value that is no bool at run time is an error, not a match.
    let truthy = json!({"spec": {"flag": "yes"}});
    let act = Activation::new(Some(&truthy), None, &request("alice"));
    let e = eval("object.spec.flag == true || object.spec.flag", &act);
    assert!(e.is_err(), "{e:?}");
}

/// Records what it is asked; allows only `get` on pods in `demo`.
#[derive(Default)]
struct Recorder(Mutex<Vec<AuthzRequest>>);

impl Authorizer for Recorder {
    fn authorize(&self, r: &AuthzRequest) -> Decision {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(r.clone());
        }
        if r.verb == "get" && r.resource == "pods" && r.namespace == "demo" {
            Decision::Allow
        } else {
            Decision::NoOpinion("no RBAC policy matched".into())
        }
    }
}

#[test]
fn authorizer_checks_ask_the_authorizer_as_the_request_user() {
    let recorder = Arc::new(Recorder::default());
    let user = UserInfo {
        username: "alice".into(),
        groups: vec!["tenants".into()],
        ..UserInfo::default()
    };
    let rr = RequestResource {
        group: "",
        resource: "persistentvolumeclaims",
        subresource: "",
        namespace: "demo",
        name: "data",
    };
    let act = Activation::new(None, None, &request("alice")).with_authorizer(recorder.clone(), &user, &rr);
    let pods = "authorizer.group('').resource('pods').namespace('demo')";
    assert_eq!(eval(&format!("{pods}.check('get').allowed()"), &act), Ok(true));
    assert_eq!(
        eval(&format!("{pods}.check('delete').allowed()"), &act),
        Ok(false)
    );
    assert_eq!(
        eval(
            &format!("{pods}.check('delete').reason() == 'no RBAC policy matched'"),
            &act
        ),
        Ok(true)
    );
    assert_eq!(
        eval("authorizer.requestResource.check('update').allowed()", &act),
        Ok(false)
    );
    assert_eq!(
        eval("authorizer.path('/healthz').check('get').allowed()", &act),
        Ok(false)
    );
    assert_eq!(
        eval(
            "authorizer.serviceAccount('volops-system', 'volops-controller').group('').resource('pods').namespace('demo').check('get').allowed()",
            &act
        ),
        Ok(true)
    );
    let seen = recorder.0.lock().map(|s| s.clone()).unwrap_or_default();
    let brief: Vec<(String, String, String, String, String, String)> = seen
        .iter()
        .map(|r| {
            (
                r.user.username.clone(),
                r.verb.clone(),
                r.resource.clone(),
                r.namespace.clone(),
                r.name.clone(),
                r.path.clone(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        brief[3..],
        [
            (
                s("alice"),
                s("update"),
                s("persistentvolumeclaims"),
                s("demo"),
                s("data"),
                s("")
            ),
            (s("alice"), s("get"), s(""), s(""), s(""), s("/healthz")),
            (s(CONTROLLER), s("get"), s("pods"), s("demo"), s(""), s("")),
        ]
    );
    assert!(seen[3].resource_request && !seen[4].resource_request);
    assert_eq!(seen[3].api_version, "*");
    assert_eq!(
        seen[5].user.groups,
        vec![
            "system:serviceaccounts",
            "system:serviceaccounts:volops-system",
            "system:authenticated"
        ]
    );
    assert_eq!(
        eval("authorizer.path(' ').check('get').allowed()", &act),
        Err("expression 'authorizer.path(' ').check('get').allowed()' resulted in error: path must not be empty".into())
    );
    // Without an authorizer bound, referring to it is an evaluation error.
    let bare = Activation::new(None, None, &request("alice"));
    assert!(eval("authorizer.path('/x').check('get').allowed()", &bare).is_err());
    let allow =
        Activation::new(None, None, &request("alice")).with_authorizer(Arc::new(AllowAll), &user, &rr);
    assert_eq!(
        eval("authorizer.requestResource.check('delete').allowed()", &allow),
        Ok(true)
    );
}
