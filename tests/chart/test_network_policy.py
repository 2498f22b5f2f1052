"""NetworkPolicies (issue 18, finding 9): the webhook's HTTPS port open to the API server, the
metrics port only to labelled scrapers, nothing else; probes left to the kubelet."""

from __future__ import annotations

import chartlib
from scenarios import NAMESPACE, rendered

COMPONENTS = ("webhook", "controller")


def policy(docs, component):
    return chartlib.one(docs, "NetworkPolicy", f"volops-{component}")


def rules_by_port(pol):
    """{port name: the rule's `from` (None: any source)} of a policy's ingress."""
    out = {}
    for rule in pol["spec"]["ingress"]:
        for port in rule["ports"]:
            assert port["protocol"] == "TCP"
            out[port["port"]] = rule.get("from")
    return out


def container_ports(docs, component):
    deploy = chartlib.one(docs, "Deployment", f"volops-{component}")
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return {p["name"]: p["containerPort"] for p in c["ports"]}


def test_default_policies_open_https_to_all_and_metrics_to_labelled_namespaces(default_docs):
    for component in COMPONENTS:
        pol = policy(default_docs, component)
        assert pol["metadata"]["namespace"] == NAMESPACE
        deploy = chartlib.one(default_docs, "Deployment", f"volops-{component}")
        # The policy selects exactly this component's pods.
        assert pol["spec"]["podSelector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
        assert pol["spec"]["policyTypes"] == ["Ingress"], "egress must stay open by default"
        rules = rules_by_port(pol)
        # Every named port exists on the pod; the probe port is not opened (the kubelet's traffic
        # from the node is always allowed).
        ports = container_ports(default_docs, component)
        assert set(rules) <= set(ports)
        assert "probes" not in rules
        assert rules["http-metrics"] == [
            {"namespaceSelector": {"matchLabels": {"volops.dev/metrics-scraper": "true"}}}
        ]
    webhook = rules_by_port(policy(default_docs, "webhook"))
    assert set(webhook) == {"https", "http-metrics"}
    assert webhook["https"] is None, "the API server's address cannot be selected by default"
    assert set(rules_by_port(policy(default_docs, "controller"))) == {"http-metrics"}


def test_restricted_sources_and_egress_follow_values():
    docs = chartlib.all_docs(rendered("locked-down"))
    webhook = policy(docs, "webhook")
    https_from = rules_by_port(webhook)["https"]
    assert https_from[0] == {"ipBlock": {"cidr": "10.0.0.0/24"}}
    # The chart's own `helm test` pod may still call the webhook.
    assert https_from[1] == {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "volops",
                "app.kubernetes.io/instance": "volops",
                "app.kubernetes.io/component": "test",
            }
        }
    }
    test_pod = chartlib.one(docs, "Pod", "volops-test-webhook-tls")
    assert https_from[1]["podSelector"]["matchLabels"].items() <= test_pod["metadata"]["labels"].items()
    for component in COMPONENTS:
        pol = policy(docs, component)
        metrics_from = rules_by_port(pol)["http-metrics"]
        assert metrics_from[0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
        assert pol["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert pol["spec"]["egress"][1] == {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}
    no_tests = chartlib.all_docs(
        chartlib.render_manifests(
            {"tests": {"enabled": False}, "networkPolicy": {"webhook": {"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]}}}
        )
    )
    assert rules_by_port(policy(no_tests, "webhook"))["https"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}]


def test_empty_metrics_sources_open_metrics_to_all_and_policies_can_be_off():
    docs = chartlib.all_docs(chartlib.render_manifests({"networkPolicy": {"metrics": {"from": []}}}))
    assert rules_by_port(policy(docs, "controller")) == {"http-metrics": None}
    assert chartlib.find(chartlib.all_docs(rendered("network-policy-off")), "NetworkPolicy") == []
