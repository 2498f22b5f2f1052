"""The webhook registrations: names, paths, rules and policies the binaries are built against."""

from __future__ import annotations

import base64

import chartlib
from scenarios import NAMESPACE, rendered
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

FULLNAME = "volops"
SERVICE = "volops-webhook"

OPS_RULE_MUTATE = {
    "apiGroups": ["ops.kubedb.com"],
    "apiVersions": ["v1alpha1"],
    "resources": ["redisopsrequests", "zookeeperopsrequests"],
    "operations": ["CREATE"],
    "scope": "Namespaced",
}
OPS_RULE_VALIDATE = {
    "apiGroups": ["ops.kubedb.com"],
    "apiVersions": ["v1alpha1"],
    "resources": ["redisopsrequests", "zookeeperopsrequests"],
    "operations": ["CREATE", "UPDATE"],
    "scope": "Namespaced",
}
DB_RULE_VALIDATE = {
    "apiGroups": ["kubedb.com"],
    "apiVersions": ["v1", "v1alpha2"],
    "resources": ["redises", "zookeepers"],
    "operations": ["UPDATE"],
    "scope": "Namespaced",
}


PVC_RULE_VALIDATE = {
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "resources": ["persistentvolumeclaims"],
    "operations": ["UPDATE"],
    "scope": "Namespaced",
}
POLICY_RULE_VALIDATE = {
    "apiGroups": ["volops.dev"],
    "apiVersions": ["v1alpha1"],
    "resources": ["volumeexpansionpolicies"],
    "operations": ["CREATE", "UPDATE"],
    "scope": "Cluster",
}
AUTOSCALER_RULE = {
    "apiGroups": ["autoscaling.kubedb.com"],
    "apiVersions": ["v1alpha1"],
    "resources": ["redisautoscalers", "zookeeperautoscalers"],
    "operations": ["CREATE", "UPDATE"],
    "scope": "Namespaced",
}
VALIDATING = [
    "autoscalers.validate.volops.dev",
    "databases.validate.volops.dev",
    "opsrequests.validate.volops.dev",
    "policies.validate.volops.dev",
    "pvcs.validate.volops.dev",
]


def webhooks(docs, kind):
    return {w["name"]: w for w in chartlib.one(docs, kind, FULLNAME)["webhooks"]}


def all_webhooks(docs):
    return list(webhooks(docs, "MutatingWebhookConfiguration").values()) + list(
        webhooks(docs, "ValidatingWebhookConfiguration").values()
    )


def test_webhook_names_paths_and_rules(docs):
    mutating = webhooks(docs, "MutatingWebhookConfiguration")
    validating = webhooks(docs, "ValidatingWebhookConfiguration")
    assert list(mutating) == ["opsrequests.mutate.volops.dev", "autoscalers.mutate.volops.dev"]
    assert sorted(validating) == VALIDATING

    expected = {
        "opsrequests.mutate.volops.dev": ("/mutate", [OPS_RULE_MUTATE]),
        "opsrequests.validate.volops.dev": ("/validate", [OPS_RULE_VALIDATE]),
        "databases.validate.volops.dev": ("/validate", [DB_RULE_VALIDATE]),
        "pvcs.validate.volops.dev": ("/validate", [PVC_RULE_VALIDATE]),
        "policies.validate.volops.dev": ("/validate", [POLICY_RULE_VALIDATE]),
        "autoscalers.mutate.volops.dev": ("/mutate", [AUTOSCALER_RULE]),
        "autoscalers.validate.volops.dev": ("/validate", [AUTOSCALER_RULE]),
    }
    for hook in all_webhooks(docs):
        path, rules = expected[hook["name"]]
        assert hook["rules"] == rules, hook["name"]
        assert hook["clientConfig"]["service"] == {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "path": path,
            "port": 443,
        }


def test_webhook_policies_default():
    for hook in all_webhooks(chartlib.all_docs(rendered("defaults"))):
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["timeoutSeconds"] == 10
        assert "objectSelector" not in hook
    mutate = webhooks(chartlib.all_docs(rendered("defaults")), "MutatingWebhookConfiguration")
    assert mutate["opsrequests.mutate.volops.dev"]["reinvocationPolicy"] == "Never"
    assert mutate["autoscalers.mutate.volops.dev"]["reinvocationPolicy"] == "Never"


def test_default_namespace_selector_excludes_release_ns_kube_system_and_opt_out():
    for hook in all_webhooks(chartlib.all_docs(rendered("defaults"))):
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": [NAMESPACE, "kube-system"],
                },
                {"key": "volops.dev/webhook", "operator": "NotIn", "values": ["disabled"]},
            ]
        }


def test_custom_namespace_selector_policy_and_timeout():
    for hook in all_webhooks(chartlib.all_docs(rendered("custom-namespace-selector"))):
        sel = hook["namespaceSelector"]
        assert sel["matchLabels"] == {"tenant": "databases"}
        assert sel["matchExpressions"] == [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": [NAMESPACE, "kube-system", "monitoring"],
            },
            {"key": "volops.dev/webhook", "operator": "NotIn", "values": ["disabled"]},
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
        ]
        assert hook["failurePolicy"] == "Ignore"
        assert hook["timeoutSeconds"] == 5


def test_selector_follows_release_namespace():
    docs = chartlib.all_docs(chartlib.render_manifests({}, namespace="platform-ops"))
    for hook in all_webhooks(docs):
        assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["platform-ops", "kube-system"]
        assert hook["clientConfig"]["service"]["namespace"] == "platform-ops"


def _secret_pem(docs, key):
    secret = chartlib.one(docs, "Secret", "volops-webhook-tls")
    return base64.b64decode(secret["data"][key])


def test_generated_certificate_matches_ca_bundle_and_service_names():
    docs = chartlib.all_docs(rendered("defaults"))
    secret = chartlib.one(docs, "Secret", "volops-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    ca_pem = _secret_pem(docs, "ca.crt")
    # Every webhook trusts the very CA stored in the Secret (one generation per render).
    for hook in all_webhooks(docs):
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca_pem
    ca = x509.load_pem_x509_certificate(ca_pem)
    leaf = x509.load_pem_x509_certificate(_secret_pem(docs, "tls.crt"))
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{SERVICE}.{NAMESPACE}.svc" in sans.get_values_for_type(x509.DNSName)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert b"PRIVATE KEY" in _secret_pem(docs, "tls.key")


def test_cert_manager_injects_ca_and_chart_generates_nothing():
    docs = chartlib.all_docs(rendered("cert-manager"))
    assert chartlib.find(docs, "Secret") == []
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        config = chartlib.one(docs, kind, FULLNAME)
        assert config["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": f"{NAMESPACE}/volops-webhook"
        }
        for hook in config["webhooks"]:
            assert "caBundle" not in hook["clientConfig"]
    cert = chartlib.one(docs, "Certificate", "volops-webhook")
    assert cert["spec"]["secretName"] == "volops-webhook-tls"
    assert f"{SERVICE}.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    assert cert["spec"]["issuerRef"] == {"name": "volops-ca", "kind": "Issuer", "group": "cert-manager.io"}
    ca_issuer = chartlib.one(docs, "Issuer", "volops-ca")
    ca_cert = chartlib.one(docs, "Certificate", "volops-ca")
    assert ca_cert["spec"]["isCA"] is True
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"]
    assert chartlib.one(docs, "Issuer", "volops-selfsigned")["spec"] == {"selfSigned": {}}


def test_cert_manager_with_existing_issuer_creates_no_issuers():
    docs = chartlib.all_docs(rendered("cert-manager-issuer"))
    assert chartlib.find(docs, "Issuer") == []
    cert = chartlib.one(docs, "Certificate", "volops-webhook")
    assert cert["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_existing_secret_uses_given_ca_bundle():
    docs = chartlib.all_docs(rendered("existing-secret"))
    assert chartlib.find(docs, "Secret") == []
    for hook in all_webhooks(docs):
        assert hook["clientConfig"]["caBundle"] == "Q0EK"
    deploy = chartlib.one(docs, "Deployment", "volops-webhook")
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "my-webhook-tls"


def test_service_targets_https_port():
    docs = chartlib.all_docs(rendered("defaults"))
    svc = chartlib.one(docs, "Service", SERVICE)
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    deploy = chartlib.one(docs, "Deployment", "volops-webhook")
    assert svc["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    ports = {p["name"]: p["containerPort"] for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert ports == {"https": 8443, "probes": 8080, "http-metrics": 9090}


def test_external_url_replaces_service_reference():
    docs = chartlib.all_docs(
        chartlib.render_manifests(
            {
                "webhook": {"externalURL": "https://127.0.0.1:8443/"},
                "tls": {"existingSecret": "local", "caBundle": "Q0EK"},
            }
        )
    )
    paths = {}
    for hook in all_webhooks(docs):
        assert "service" not in hook["clientConfig"]
        assert hook["clientConfig"]["caBundle"] == "Q0EK"
        paths[hook["name"]] = hook["clientConfig"]["url"]
    assert paths == {
        "opsrequests.mutate.volops.dev": "https://127.0.0.1:8443/mutate",
        "opsrequests.validate.volops.dev": "https://127.0.0.1:8443/validate",
        "databases.validate.volops.dev": "https://127.0.0.1:8443/validate",
        "pvcs.validate.volops.dev": "https://127.0.0.1:8443/validate",
        "policies.validate.volops.dev": "https://127.0.0.1:8443/validate",
        "autoscalers.mutate.volops.dev": "https://127.0.0.1:8443/mutate",
        "autoscalers.validate.volops.dev": "https://127.0.0.1:8443/validate",
    }


def test_no_webhook_intercepts_status_or_the_controllers_own_writes(docs):
    """The controller never needs the webhook to go on or roll back (issue 18, finding 3)."""
    skip = "request.userInfo.username != 'system:serviceaccount:volops-system:volops-controller'"
    for hook in all_webhooks(docs):
        for rule in hook["rules"]:
            assert not any("/" in r for r in rule["resources"]), hook["name"]
        assert hook["matchConditions"][0] == {"name": "exclude-volops-controller", "expression": skip}


def test_match_conditions_follow_the_release_and_narrow_pvc_and_database_edits():
    docs = chartlib.all_docs(chartlib.render_manifests({"fullnameOverride": "ops"}, namespace="platform"))
    hooks = {
        h["name"]: h
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
        for h in chartlib.one(docs, kind, "ops")["webhooks"]
    }
    assert len(hooks) == 7
    for hook in hooks.values():
        assert hook["matchConditions"][0]["expression"] == (
            "request.userInfo.username != 'system:serviceaccount:platform:ops-controller'"
        )
    assert [c["name"] for c in hooks["pvcs.validate.volops.dev"]["matchConditions"]] == [
        "exclude-volops-controller",
        "storage-request-changes",
    ]
    assert "object.spec.resources.requests != oldObject.spec.resources.requests" in (
        hooks["pvcs.validate.volops.dev"]["matchConditions"][1]["expression"]
    )
    assert [c["name"] for c in hooks["databases.validate.volops.dev"]["matchConditions"]] == [
        "exclude-volops-controller",
        "storage-changes",
    ]
    assert len(hooks["opsrequests.validate.volops.dev"]["matchConditions"]) == 1
    assert len(hooks["autoscalers.mutate.volops.dev"]["matchConditions"]) == 1
    assert len(hooks["autoscalers.validate.volops.dev"]["matchConditions"]) == 1
