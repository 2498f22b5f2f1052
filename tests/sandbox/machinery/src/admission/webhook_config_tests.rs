use serde_json::{Value, json};

use super::*;

fn hook(extra: Value) -> Value {
    let mut h = json!({"name": "pvcs.validate.volops.dev", "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "volops-system", "name": "volops-webhook", "path": "/validate"}},
        "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": ["persistentvolumeclaims"]}]});
    if let (Some(h), Some(e)) = (h.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            h.insert(k.clone(), v.clone());
        }
    }
    h
}

fn config(hooks: Vec<Value>) -> Value {
    json!({"metadata": {"name": "volops"}, "webhooks": hooks})
}

/// `field: message` of each cause, as kube's aggregated Invalid message lists them.
fn errors(cfg: &Value, mutating: bool) -> Vec<String> {
    validate_webhook_configuration(cfg, None, mutating)
        .iter()
        .map(FieldCause::error_string)
        .collect()
}

#[test]
fn the_charts_shape_is_valid_and_defaulted() {
    let mut cfg = config(vec![hook(
        json!({"matchConditions": [{"name": "not-the-controller",
        "expression": "request.userInfo.username != 'system:serviceaccount:volops-system:volops-controller'"}]}),
    )]);
    assert_eq!(errors(&cfg, true), Vec::<String>::new());
    default_webhook_configuration(&mut cfg, true);
    let h = &cfg["webhooks"][0];
    assert_eq!(
        (
            &h["failurePolicy"],
            &h["matchPolicy"],
            &h["timeoutSeconds"],
            &h["reinvocationPolicy"]
        ),
        (&json!("Fail"), &json!("Equivalent"), &json!(10), &json!("Never"))
    );
    assert_eq!(
        (&h["namespaceSelector"], &h["objectSelector"]),
        (&json!({}), &json!({}))
    );
    assert_eq!(h["rules"][0]["scope"], "*");
    assert_eq!(h["clientConfig"]["service"]["port"], 443);
    let mut v = config(vec![hook(json!({"timeoutSeconds": 5}))]);
    default_webhook_configuration(&mut v, false);
    assert_eq!(v["webhooks"][0]["timeoutSeconds"], 5);
    assert!(v["webhooks"][0].get("reinvocationPolicy").is_none());
}

#[test]
fn webhook_fields_are_checked_with_kubes_messages() {
    let table = [
        (
            json!({"name": "short.name"}),
            vec![
                "webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots",
            ],
        ),
        (json!({"name": ""}), vec!["webhooks[0].name: Required value"]),
        (
            json!({"sideEffects": null}),
            vec!["webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"],
        ),
        (
            json!({"sideEffects": "Some"}),
            vec![
                "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
            ],
        ),
        (
            json!({"admissionReviewVersions": []}),
            vec!["webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1"],
        ),
        (
            json!({"admissionReviewVersions": ["v2"]}),
            vec![
                "webhooks[0].admissionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
            ],
        ),
        (
            json!({"admissionReviewVersions": ["v1", "v1"]}),
            vec!["webhooks[0].admissionReviewVersions[1]: Invalid value: \"v1\": duplicate version"],
        ),
        (
            json!({"timeoutSeconds": 31}),
            vec![
                "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
            ],
        ),
        (
            json!({"timeoutSeconds": 0}),
            vec![
                "webhooks[0].timeoutSeconds: Invalid value: 0: the timeout value must be between 1 and 30 seconds",
            ],
        ),
        (
            json!({"failurePolicy": "Maybe"}),
            vec![
                "webhooks[0].failurePolicy: Unsupported value: \"Maybe\": supported values: \"Fail\", \"Ignore\"",
            ],
        ),
        (
            json!({"matchPolicy": "Loose"}),
            vec![
                "webhooks[0].matchPolicy: Unsupported value: \"Loose\": supported values: \"Equivalent\", \"Exact\"",
            ],
        ),
        (
            json!({"reinvocationPolicy": "Always"}),
            vec![
                "webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\"",
            ],
        ),
        (
            json!({"clientConfig": {}}),
            vec!["webhooks[0].clientConfig: Required value: exactly one of url or service is required"],
        ),
        (
            json!({"clientConfig": {"url": "https://h/x", "service": {"namespace": "a", "name": "b"}}}),
            vec!["webhooks[0].clientConfig: Required value: exactly one of url or service is required"],
        ),
        (
            json!({"clientConfig": {"url": "http://h/x?a=1"}}),
            vec![
                "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "webhooks[0].clientConfig.url: Invalid value: \"a=1\": query parameters are not permitted in the URL",
            ],
        ),
        (
            json!({"clientConfig": {"service": {"namespace": "", "name": "w", "path": "/a//b", "port": 70000}}}),
            vec![
                "webhooks[0].clientConfig.service.namespace: Required value: service namespace is required",
                "webhooks[0].clientConfig.service.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive",
                "webhooks[0].clientConfig.service.path: Invalid value: \"/a//b\": segment[1] may not be empty",
            ],
        ),
        (
            json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [], "apiVersions": ["v1"], "resources": ["*", "pods"], "scope": "Everywhere"}]}),
            vec![
                "webhooks[0].rules[0].operations: Invalid value: []admissionregistration.OperationType{\"*\", \"CREATE\"}: if '*' is present, must not specify other operations",
                "webhooks[0].rules[0].apiGroups: Required value",
                "webhooks[0].rules[0].resources: Invalid value: []string{\"*\", \"pods\"}: if '*' is present, must not specify other resources without subresources",
                "webhooks[0].rules[0].scope: Unsupported value: \"Everywhere\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
            ],
        ),
        (
            json!({"rules": [{"operations": ["PATCH"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/*", "pods/status", "*/*"]}]}),
            vec![
                "webhooks[0].rules[0].operations[0]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
                "webhooks[0].rules[0].resources[1]: Invalid value: \"pods/status\": if 'pods/*' is present, must not specify pods/status",
                "webhooks[0].rules[0].resources: Invalid value: []string{\"pods/*\", \"pods/status\", \"*/*\"}: if '*/*' is present, must not specify other resources",
            ],
        ),
        (
            json!({"namespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In"}, {"key": "x", "operator": "Near", "values": ["a b"]}]}}),
            vec![
                "webhooks[0].namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "webhooks[0].namespaceSelector.matchExpressions[1].operator: Invalid value: \"Near\": not a valid selector operator",
                "webhooks[0].namespaceSelector.matchExpressions[1].values[0]: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ],
        ),
    ];
    for (extra, want) in table {
        let got = errors(&config(vec![hook(extra.clone())]), true);
        assert_eq!(got, want, "{extra}");
    }
}

#[test]
fn match_conditions_are_compiled_on_write() {
    let mc = |list: Value| config(vec![hook(json!({"matchConditions": list}))]);
    assert_eq!(
        errors(
            &mc(json!([{"name": "a", "expression": "request.userInfo.usrname == 'x'"}])),
            false
        ),
        vec![
            "webhooks[0].matchConditions[0].expression: Invalid value: \"request.userInfo.usrname == 'x'\": compilation failed: ERROR: <input>:1:17: undefined field 'usrname'\n | request.userInfo.usrname == 'x'\n | ................^"
        ]
    );
    assert_eq!(
        errors(&mc(json!([{"name": "a", "expression": "object.spec"}])), false),
        vec![
            "webhooks[0].matchConditions[0].expression: Invalid value: \"object.spec\": must evaluate to bool but got dyn"
        ]
    );
    assert_eq!(
        errors(
            &mc(
                json!([{"name": "a", "expression": "  "}, {"name": "a", "expression": "true"}, {"expression": "true"}, {"name": "bad name", "expression": "true"}])
            ),
            false
        ),
        vec![
            "webhooks[0].matchConditions[0].expression: Required value",
            "webhooks[0].matchConditions[1].name: Duplicate value: \"a\"",
            "webhooks[0].matchConditions[2].name: Required value",
            "webhooks[0].matchConditions[3].name: Invalid value: \"bad name\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ]
    );
    let many: Vec<Value> = (0..65)
        .map(|i| json!({"name": format!("c{i}"), "expression": "true"}))
        .collect();
    assert_eq!(
        errors(&mc(Value::Array(many)), false),
        vec!["webhooks[0].matchConditions: Too many: 65: must have at most 64 items"]
    );
}

#[test]
fn names_are_unique_per_configuration_and_updates_keep_what_was_stored() {
    let cfg = config(vec![hook(json!({})), hook(json!({}))]);
    assert_eq!(
        errors(&cfg, false),
        vec!["webhooks[1].name: Duplicate value: \"pvcs.validate.volops.dev\""]
    );
    // An update may keep what the stored object already had (kube's ratcheting).
    let old = config(vec![hook(json!({"sideEffects": "Some"})), hook(json!({}))]);
    let new = config(vec![
        hook(json!({"sideEffects": "Some", "timeoutSeconds": 5})),
        hook(json!({})),
    ]);
    assert_eq!(validate_webhook_configuration(&new, Some(&old), false), vec![]);
    assert_eq!(errors(&new, false).len(), 2);
    // Unchanged match conditions are not compiled again; changed ones are.
    let bad = config(vec![hook(
        json!({"matchConditions": [{"name": "a", "expression": "nope()"}]}),
    )]);
    let mut same = bad.clone();
    same["webhooks"][0]["timeoutSeconds"] = json!(3);
    assert_eq!(validate_webhook_configuration(&same, Some(&bad), false), vec![]);
    let mut changed = bad.clone();
    changed["webhooks"][0]["matchConditions"][0]["expression"] = json!("nope(1)");
    assert_eq!(
        validate_webhook_configuration(&changed, Some(&bad), false).len(),
        1
    );
    let mut badname = config(vec![hook(json!({}))]);
    badname["metadata"]["name"] = json!("Volops");
    assert_eq!(errors(&badname, false).len(), 1);
}
