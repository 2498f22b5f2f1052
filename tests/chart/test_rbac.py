"""RBAC: exactly the verbs each binary uses, nothing more; leases only in the release namespace."""

from __future__ import annotations

import chartlib
from scenarios import NAMESPACE

READ = {"get", "list", "watch"}
CACHED = {"list", "watch"}

WEBHOOK_RIGHTS = {
    ("kubedb.com", "redises"): CACHED,
    ("kubedb.com", "zookeepers"): CACHED,
    ("ops.kubedb.com", "redisopsrequests"): CACHED,
    ("ops.kubedb.com", "zookeeperopsrequests"): CACHED,
    ("volops.dev", "volumeexpansionpolicies"): CACHED,
    ("", "persistentvolumeclaims"): CACHED,
    ("", "resourcequotas"): CACHED,
    ("", "namespaces"): CACHED,
    ("storage.k8s.io", "storageclasses"): CACHED,
}

CREATE_DELETE = READ | {"create", "delete"}
CONTROLLER_RIGHTS = {
    **{("ops.kubedb.com", f"{kind}opsrequests"): READ | {"patch"} for kind in ("redis", "zookeeper")},
    **{("ops.kubedb.com", f"{kind}opsrequests/status"): {"patch"} for kind in ("redis", "zookeeper")},
    **{("kubedb.com", db): READ | {"patch"} for db in ("redises", "zookeepers")},
    **{("kubedb.com", f"{db}/status"): {"patch"} for db in ("redises", "zookeepers")},
    ("", "persistentvolumeclaims"): READ | {"patch"},
    ("", "pods"): CREATE_DELETE,
    ("apps", "statefulsets"): CREATE_DELETE,
    ("apps.k8s.appscode.com", "petsets"): CREATE_DELETE,
    ("storage.k8s.io", "storageclasses"): CACHED,
    ("", "resourcequotas"): CACHED,
    ("", "namespaces"): READ,
    ("volops.dev", "volumeexpansionpolicies"): CACHED,
    ("events.k8s.io", "events"): {"create", "patch"},
    # The storage autoscaler (issue 22): its autoscalers, their status, the requests it creates,
    # and with the default kubelet usage source the nodes' Summary API through the node proxy.
    **{("autoscaling.kubedb.com", f"{kind}autoscalers"): CACHED for kind in ("redis", "zookeeper")},
    **{("autoscaling.kubedb.com", f"{kind}autoscalers/status"): {"patch"} for kind in ("redis", "zookeeper")},
    ("", "nodes"): {"list"},
    ("", "nodes/proxy"): {"get"},
}
for _kind in ("redis", "zookeeper"):
    CONTROLLER_RIGHTS[("ops.kubedb.com", f"{_kind}opsrequests")] = READ | {"patch", "create"}


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


def test_prometheus_usage_source_needs_no_node_rights():
    docs = chartlib.all_docs(
        chartlib.render_manifests(
            {"controller": {"autoscaler": {"usageSource": "prometheus", "prometheusURL": "http://prom:9090"}}}
        )
    )
    granted = rights(chartlib.one(docs, "ClusterRole", "volops-controller"))
    assert ("", "nodes") not in granted and ("", "nodes/proxy") not in granted
    want = {k: v for k, v in CONTROLLER_RIGHTS.items() if k[1] not in ("nodes", "nodes/proxy")}
    assert granted == want


CONTROLLER_NAMESPACED_RIGHTS = {
    # Leader election.
    "volops-controller-leader-election": {("coordination.k8s.io", "leases"): {"get", "create", "patch"}},
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


TENANT_WRITE = READ | {"create", "update", "patch", "delete", "deletecollection"}
TENANT_EDIT_RIGHTS = {
    ("ops.kubedb.com", "redisopsrequests"): TENANT_WRITE,
    ("ops.kubedb.com", "zookeeperopsrequests"): TENANT_WRITE,
    ("kubedb.com", "redises"): TENANT_WRITE,
    ("kubedb.com", "zookeepers"): TENANT_WRITE,
}
TENANT_VIEW_RIGHTS = {
    **{("ops.kubedb.com", f"{kind}opsrequests{sub}"): READ for kind in ("redis", "zookeeper") for sub in ("", "/status")},
    **{("kubedb.com", f"{db}{sub}"): READ for db in ("redises", "zookeepers") for sub in ("", "/status")},
}


def aggregated_to(role: dict) -> set[str]:
    labels = role["metadata"].get("labels", {})
    prefix = "rbac.authorization.k8s.io/aggregate-to-"
    return {k[len(prefix):] for k, v in labels.items() if k.startswith(prefix) and v == "true"}


def test_tenant_roles_extend_admin_edit_and_view_without_status_or_policies(default_docs):
    edit = chartlib.one(default_docs, "ClusterRole", "volops-tenant-edit")
    view = chartlib.one(default_docs, "ClusterRole", "volops-tenant-view")
    assert aggregated_to(edit) == {"admin", "edit"}
    assert aggregated_to(view) == {"view"}
    assert rights(edit) == TENANT_EDIT_RIGHTS
    assert rights(view) == TENANT_VIEW_RIGHTS
    # The state machine (/status), the platform team's limits and Secrets are never a tenant's.
    for granted in (rights(edit), rights(view)):
        for (group, resource), verbs in granted.items():
            assert group != "volops.dev" and resource != "secrets"
            assert not (resource.endswith("/status") and verbs - READ), (resource, verbs)
    # Bound by the platform team per namespace, never by the chart.
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for binding in chartlib.find(default_docs, kind):
            assert not binding["roleRef"]["name"].startswith("volops-tenant-"), binding["metadata"]["name"]


def test_tenant_roles_follow_their_values():
    without_databases = chartlib.all_docs(chartlib.render_manifests({"tenantRoles": {"databases": False}}))
    edit = rights(chartlib.one(without_databases, "ClusterRole", "volops-tenant-edit"))
    assert {g for g, _ in edit} == {"ops.kubedb.com"}
    disabled = chartlib.all_docs(chartlib.render_manifests({"tenantRoles": {"enabled": False}}))
    assert not [r for r in chartlib.find(disabled, "ClusterRole") if r["metadata"]["name"].startswith("volops-tenant-")]
