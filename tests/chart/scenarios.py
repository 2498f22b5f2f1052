"""The values matrix of issue 8, each scenario rendered once per test session."""

from __future__ import annotations

import functools
from typing import Any

import chartlib

NAMESPACE = "volops-system"

# The values matrix of issue 8. "crds-skipped" renders like `helm install --skip-crds`.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cert-manager": {"certManager": {"enabled": True}},
    "cert-manager-issuer": {
        "certManager": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}
    },
    "ha-off": {
        "webhook": {"replicas": 1},
        "controller": {"replicas": 1, "leaderElection": {"enabled": False}},
    },
    "custom-namespace-selector": {
        "webhook": {
            "namespaceSelector": {
                "matchLabels": {"tenant": "databases"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}],
            },
            "excludeNamespaces": ["monitoring"],
            "failurePolicy": "Ignore",
            "timeoutSeconds": 5,
        }
    },
    "crds-skipped": {},
    "everything-on": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
            "grafanaDashboard": {"enabled": True},
        },
        "webhook": {"otherTypes": "deny", "podDisruptionBudget": {"maxUnavailable": 1}},
        "controller": {"pauseHandshake": "self"},
        "logFormat": "text",
    },
    "existing-secret": {"tls": {"existingSecret": "my-webhook-tls", "caBundle": "Q0EK"}},
    "locked-down": {
        "webhook": {"clientCA": {"secret": "apiserver-client-ca"}},
        "networkPolicy": {
            "webhook": {"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]},
            "metrics": {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                    }
                ]
            },
            "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}, {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}],
        },
    },
    "network-policy-off": {"networkPolicy": {"enabled": False}},
}


@functools.lru_cache(maxsize=None)
def rendered(scenario: str) -> dict[str, list[dict[str, Any]]]:
    return chartlib.render_manifests(
        SCENARIOS[scenario], namespace=NAMESPACE, include_crds=scenario != "crds-skipped"
    )
