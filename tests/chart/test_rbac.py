"""RBAC: exactly the verbs each binary uses, nothing more; leases only in the release namespace."""

from __future__ import annotations

import chartlib
from scenarios import NAMESPACE

READ = {"get", "list", "watch"}

WEBHOOK_RIGHTS = {
    ("kubedb.com", "redises"): READ,
    ("kubedb.com", "zookeepers"): READ,
    ("ops.kubedb.com", "redisopsrequests"): READ,
    ("ops.kubedb.com", "zookeeperopsrequests"): READ,
    ("volops.dev", "volumeexpansionpolicies"): READ,
    ("", "persistentvolumeclaims"): READ,
    ("", "resourcequotas"): READ,
    ("", "namespaces"): READ,
    ("storage.k8s.io", "storageclasses"): READ,
}

RW = READ | {"patch", "update"}
CREATE_DELETE = READ | {"create", "delete"}
CONTROLLER_RIGHTS = {
    **{("ops.kubedb.com", f"{kind}opsrequests{sub}"): RW for kind in ("redis", "zookeeper") for sub in ("", "/status", "/finalizers")},
    **{("kubedb.com", f"{db}{sub}"): RW for db in ("redises", "zookeepers") for sub in ("", "/status")},
    ("", "persistentvolumeclaims"): READ | {"patch"},
    ("", "pods"): CREATE_DELETE,
    ("apps", "statefulsets"): CREATE_DELETE,
    ("apps.k8s.appscode.com", "petsets"): CREATE_DELETE,
    ("storage.k8s.io", "storageclasses"): READ,
    ("", "resourcequotas"): READ,
    ("", "namespaces"): READ,
    ("volops.dev", "volumeexpansionpolicies"): READ,
    ("events.k8s.io", "events"): {"create", "patch"},
}


def rights(role: dict) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs granted by a Role/ClusterRole, rejecting wildcards and names."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource) and "*" not in rule["verbs"]
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def bound_subjects(docs, binding_kind, role_kind, role_name):
    return [
        s
        for b in chartlib.find(docs, binding_kind)
        if b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name}
        for s in b["subjects"]
    ]


def test_webhook_cluster_role_is_read_only_caches(docs):
    assert rights(chartlib.one(docs, "ClusterRole", "volops-webhook")) == WEBHOOK_RIGHTS
    assert bound_subjects(docs, "ClusterRoleBinding", "ClusterRole", "volops-webhook") == [
        {"kind": "ServiceAccount", "name": "volops-webhook", "namespace": NAMESPACE}
    ]


def test_controller_cluster_role_exact_verbs(docs):
    assert rights(chartlib.one(docs, "ClusterRole", "volops-controller")) == CONTROLLER_RIGHTS
    assert bound_subjects(docs, "ClusterRoleBinding", "ClusterRole", "volops-controller") == [
        {"kind": "ServiceAccount", "name": "volops-controller", "namespace": NAMESPACE}
    ]


CONTROLLER_NAMESPACED_RIGHTS = {
    # Leader election.
    "volops-controller-leader-election": {("coordination.k8s.io", "leases"): {"get", "create", "update", "patch"}},
    # Saved state: one Secret per running request, only here.
    "volops-controller-saved-state": {("", "secrets"): {"get", "list", "create", "update", "delete"}},
}


def test_leases_and_secrets_only_in_release_namespace(docs):
    # No cluster-wide lease or Secret rights anywhere.
    for role in chartlib.find(docs, "ClusterRole"):
        granted = rights(role)
        assert "coordination.k8s.io" not in {g for g, _ in granted}
        assert ("", "secrets") not in granted, role["metadata"]["name"]
    roles = {r["metadata"]["name"]: r for r in chartlib.find(docs, "Role")}
    assert set(roles) == set(CONTROLLER_NAMESPACED_RIGHTS)
    for name, want in CONTROLLER_NAMESPACED_RIGHTS.items():
        role = roles[name]
        assert role["metadata"]["namespace"] == NAMESPACE
        assert rights(role) == want
        binding = chartlib.one(docs, "RoleBinding", name)
        assert binding["metadata"]["namespace"] == NAMESPACE
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "volops-controller", "namespace": NAMESPACE}]


def test_each_deployment_runs_as_its_own_service_account(default_docs):
    for component in ("webhook", "controller"):
        deploy = chartlib.one(default_docs, "Deployment", f"volops-{component}")
        sa = deploy["spec"]["template"]["spec"]["serviceAccountName"]
        assert sa == f"volops-{component}"
        assert chartlib.one(default_docs, "ServiceAccount", sa)["metadata"]["namespace"] == NAMESPACE
