"""Pods: hardening, probes, arguments, certificate mount, replicas, PDB and spreading."""

from __future__ import annotations

import chartlib
import pytest
from scenarios import NAMESPACE, rendered

COMPONENTS = ("webhook", "controller")


def pod_spec(docs, component):
    return chartlib.one(docs, "Deployment", f"volops-{component}")["spec"]["template"]["spec"]


def container(docs, component):
    containers = pod_spec(docs, component)["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("component", COMPONENTS)
def test_pods_are_hardened(docs, component):
    spec = pod_spec(docs, component)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs, component)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in sc or sc["privileged"] is False
    assert not spec.get("hostNetwork") and not spec.get("hostPID")


@pytest.mark.parametrize("component", COMPONENTS)
def test_probes_on_probe_port_metrics_apart_and_resources(default_docs, component):
    c = container(default_docs, component)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    # Probes and metrics on ports of their own, so a NetworkPolicy can open metrics to scrapers only.
    assert (ports["probes"], ports["http-metrics"]) == (8080, 9090)
    assert f"--probe-listen=0.0.0.0:{ports['probes']}" in c["args"]
    assert f"--metrics-listen=0.0.0.0:{ports['http-metrics']}" in c["args"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] == "probes"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("valueFrom") for e in c["env"]}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_webhook_args_and_cert_secret_mounted_as_directory(default_docs):
    c = container(default_docs, "webhook")
    assert c["image"] == "ghcr.io/volops/volops-webhook:0.1.0"
    assert c["args"] == [
        "--tls-cert=/tls/tls.crt",
        "--tls-key=/tls/tls.key",
        "--listen=0.0.0.0:8443",
        "--probe-listen=0.0.0.0:8080",
        "--metrics-listen=0.0.0.0:9090",
        "--header-read-timeout=10s",
        "--idle-timeout=120s",
        "--request-timeout=5s",
        "--max-connections=1024",
        "--max-body-bytes=8Mi",
        "--max-body-memory=32Mi",
        "--log-format=json",
        "--other-types=pass",
        "--volume-expansion-owner=volops",
        "--controller-username=system:serviceaccount:volops-system:volops-controller",
        "--direct-growth=deny",
    ]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    # A subPath mount would never see the Secret's rotation; the whole directory is needed.
    assert mounts["tls"] == {"name": "tls", "mountPath": "/tls", "readOnly": True}
    assert all("subPath" not in m for m in c["volumeMounts"])
    volumes = {v["name"]: v for v in pod_spec(default_docs, "webhook")["volumes"]}
    assert volumes["tls"]["secret"] == {"secretName": "volops-webhook-tls"}


def test_controller_args_leader_election(default_docs):
    c = container(default_docs, "controller")
    assert c["image"] == "ghcr.io/volops/volops-controller:0.1.0"
    assert c["args"] == [
        "--probe-listen=0.0.0.0:8080",
        "--metrics-listen=0.0.0.0:9090",
        "--pause-handshake=kubedb",
        f"--state-namespace={NAMESPACE}",
        "--volume-expansion-owner=volops",
        "--autoscaler-interval=60s",
        "--usage-source=kubelet",
        "--leader-election",
        "--log-format=json",
    ]


def test_controller_keeps_its_saved_state_in_the_release_namespace():
    # Where the chart's Role grants Secrets: wherever the release goes.
    docs = chartlib.all_docs(chartlib.render_manifests({}, namespace="ops-tools"))
    assert "--state-namespace=ops-tools" in container(docs, "controller")["args"]


def test_optional_flags_follow_values():
    docs = chartlib.all_docs(rendered("everything-on"))
    webhook_args = container(docs, "webhook")["args"]
    assert "--other-types=deny" in webhook_args
    assert not any(a.startswith("--log-format") for a in webhook_args)
    assert "--pause-handshake=self" in container(docs, "controller")["args"]
    ha_off = chartlib.all_docs(rendered("ha-off"))
    assert "--leader-election" not in container(ha_off, "controller")["args"]


def test_the_old_pass_through_value_still_passes_other_types():
    docs = chartlib.all_docs(
        chartlib.render_manifests({"webhook": {"otherTypes": "deny", "passThroughOtherTypes": True}})
    )
    assert "--other-types=pass" in container(docs, "webhook")["args"]


def test_kubedb_owning_volume_expansion_reaches_both_binaries():
    # Both must agree, or one of them acts on requests the other leaves to KubeDB.
    docs = chartlib.all_docs(chartlib.render_manifests({"volumeExpansionOwner": "kubedb"}))
    for name in ("webhook", "controller"):
        assert "--volume-expansion-owner=kubedb" in container(docs, name)["args"], name


def test_webhook_knows_the_controller_and_the_direct_growth_mode():
    docs = chartlib.all_docs(
        chartlib.render_manifests(
            {"webhook": {"directGrowth": "within-policy"}, "fullnameOverride": "ops"}, namespace="platform"
        )
    )
    args = chartlib.one(docs, "Deployment", "ops-webhook")["spec"]["template"]["spec"]["containers"][0]["args"]
    # The controller's user is its ServiceAccount in the release namespace.
    sa = chartlib.one(docs, "ServiceAccount", "ops-controller")
    assert sa["metadata"]["namespace"] == "platform"
    assert "--controller-username=system:serviceaccount:platform:ops-controller" in args
    assert "--direct-growth=within-policy" in args


def test_webhook_limits_and_client_ca_follow_values(default_docs):
    assert not any(a.startswith("--client-ca") for a in container(default_docs, "webhook")["args"])
    docs = chartlib.all_docs(
        chartlib.render_manifests(
            {
                "webhook": {
                    "limits": {"maxConnections": 300, "maxBodyMemory": "64Mi", "idleTimeout": "1m"},
                    "clientCA": {"configMap": "apiserver-client-ca"},
                }
            }
        )
    )
    c = container(docs, "webhook")
    for arg in ("--max-connections=300", "--max-body-memory=64Mi", "--idle-timeout=1m", "--max-body-bytes=8Mi"):
        assert arg in c["args"]
    assert "--client-ca=/client-ca/ca.crt" in c["args"]
    # The whole ConfigMap directory, no subPath, so that a rotated CA is seen.
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["client-ca"] == {"name": "client-ca", "mountPath": "/client-ca", "readOnly": True}
    volumes = {v["name"]: v for v in pod_spec(docs, "webhook")["volumes"]}
    assert volumes["client-ca"] == {"name": "client-ca", "configMap": {"name": "apiserver-client-ca"}}
    docs = chartlib.all_docs(chartlib.render_manifests({"webhook": {"clientCA": {"secret": "ca", "key": "root.pem"}}}))
    assert "--client-ca=/client-ca/root.pem" in container(docs, "webhook")["args"]
    volumes = {v["name"]: v for v in pod_spec(docs, "webhook")["volumes"]}
    assert volumes["client-ca"]["secret"] == {"secretName": "ca"}


def test_pvc_parallelism_flag_follows_values(default_docs):
    assert not any(a.startswith("--pvc-parallelism") for a in container(default_docs, "controller")["args"])
    docs = chartlib.all_docs(chartlib.render_manifests({"controller": {"pvcParallelism": 1}}))
    assert "--pvc-parallelism=1" in container(docs, "controller")["args"]


def test_autoscaler_flags_follow_values(default_docs):
    args = container(default_docs, "controller")["args"]
    assert "--autoscaler-interval=60s" in args and "--usage-source=kubelet" in args
    assert not any(a.startswith("--prometheus-url") for a in args)
    values = {"controller": {"autoscaler": {"interval": "15s", "usageSource": "prometheus",
                                            "prometheusURL": "http://prom.monitoring.svc:9090"}}}
    args = container(chartlib.all_docs(chartlib.render_manifests(values)), "controller")["args"]
    for arg in ("--autoscaler-interval=15s", "--usage-source=prometheus", "--prometheus-url=http://prom.monitoring.svc:9090"):
        assert arg in args


def test_image_values():
    docs = chartlib.all_docs(
        chartlib.render_manifests(
            {"webhook": {"image": {"repository": "reg.local/wh", "tag": "v9", "pullPolicy": "Always"}}}
        )
    )
    c = container(docs, "webhook")
    assert (c["image"], c["imagePullPolicy"]) == ("reg.local/wh:v9", "Always")


@pytest.mark.parametrize("component", COMPONENTS)
def test_ha_defaults_two_replicas_pdb_and_spread(default_docs, component):
    deploy = chartlib.one(default_docs, "Deployment", f"volops-{component}")
    assert deploy["spec"]["replicas"] == 2
    selector = deploy["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == component
    pdb = chartlib.one(default_docs, "PodDisruptionBudget", f"volops-{component}")
    assert pdb["metadata"]["namespace"] == NAMESPACE
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    spec = deploy["spec"]["template"]["spec"]
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"] == selector
    term = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector


def test_webhook_rollout_never_drops_ready_pods(default_docs):
    deploy = chartlib.one(default_docs, "Deployment", "volops-webhook")
    assert deploy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_ha_off_has_one_replica_and_no_pdb():
    docs = chartlib.all_docs(rendered("ha-off"))
    for component in COMPONENTS:
        assert chartlib.one(docs, "Deployment", f"volops-{component}")["spec"]["replicas"] == 1
    assert chartlib.find(docs, "PodDisruptionBudget") == []


def test_pdb_max_unavailable_replaces_min_available():
    docs = chartlib.all_docs(rendered("everything-on"))
    spec = chartlib.one(docs, "PodDisruptionBudget", "volops-webhook")["spec"]
    assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec


def test_service_monitor_scrapes_both_components():
    assert chartlib.find(chartlib.all_docs(rendered("defaults")), "ServiceMonitor") == []
    docs = chartlib.all_docs(rendered("everything-on"))
    sm = chartlib.one(docs, "ServiceMonitor", "volops")
    assert sm["metadata"]["labels"]["release"] == "prom"
    svc = chartlib.one(docs, "Service", "volops-metrics")
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "volops", "app.kubernetes.io/instance": "volops"}
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "http-metrics"
    assert svc["spec"]["ports"][0]["port"] == 9090
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    # The Service's target port is the metrics port of both pods, not their probe port.
    for component in COMPONENTS:
        ports = {p["name"]: p["containerPort"] for p in container(docs, component)["ports"]}
        assert ports[svc["spec"]["ports"][0]["targetPort"]] == 9090


def test_chart_test_hook_calls_webhook_over_verified_tls(default_docs):
    pod = chartlib.one(default_docs, "Pod", "volops-test-webhook-tls")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert f"https://volops-webhook.{NAMESPACE}.svc:443/validate" in script
    assert "--cacert /tls/ca.crt" in script and "--insecure" not in script and " -k " not in script
    assert pod["spec"]["volumes"][0]["secret"]["secretName"] == "volops-webhook-tls"
    disabled = chartlib.all_docs(chartlib.render_manifests({"tests": {"enabled": False}}))
    assert chartlib.find(disabled, "Pod") == []
