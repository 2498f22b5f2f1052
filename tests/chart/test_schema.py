"""values.schema.json rejects bad values with a message that names the key; templates refuse contradictions."""

from __future__ import annotations

import chartlib
import helm_python as helm
import pytest

BAD_VALUES = [
    # (values, words the error must contain)
    ({"webhook": {"replica": 3}}, ["/webhook", "replica", "not allowed"]),
    ({"webhok": {"replicas": 3}}, ["webhok", "not allowed"]),
    ({"controller": {"image": {"repo": "x"}}}, ["/controller/image", "repo"]),
    ({"webhook": {"replicas": "two"}}, ["/webhook/replicas", "want integer"]),
    ({"webhook": {"timeoutSeconds": 31}}, ["/webhook/timeoutSeconds", "31", "30"]),
    ({"webhook": {"timeoutSeconds": 0}}, ["/webhook/timeoutSeconds"]),
    ({"webhook": {"failurePolicy": "fail"}}, ["/webhook/failurePolicy", "Fail"]),
    ({"webhook": {"directGrowth": "allow"}}, ["/webhook/directGrowth", "within-policy"]),
    ({"webhook": {"otherTypes": "allow"}}, ["/webhook/otherTypes", "pass"]),
    ({"volumeExpansionOwner": "both"}, ["/volumeExpansionOwner", "kubedb"]),
    ({"controller": {"pauseHandshake": "none"}}, ["/controller/pauseHandshake", "kubedb"]),
    ({"controller": {"pvcParallelism": -1}}, ["/controller/pvcParallelism"]),
    ({"controller": {"autoscaler": {"interval": "soon"}}}, ["/controller/autoscaler/interval"]),
    ({"controller": {"autoscaler": {"usageSource": "prometheus"}}}, ["/controller/autoscaler", "prometheusURL"]),
    ({"controller": {"pvcParallelism": "all"}}, ["/controller/pvcParallelism", "want integer"]),
    ({"certManager": {"enabled": "yes"}}, ["/certManager/enabled", "boolean"]),
    ({"webhook": {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}}, ["operator"]),
    ({"webhook": {"replicas": 0}}, ["/webhook/replicas"]),
    ({"logFormat": "xml"}, ["/logFormat"]),
    ({"webhook": {"externalURL": "http://plain:80"}}, ["/webhook/externalURL"]),
    ({"webhook": {"limits": {"maxBodyBytes": "8MB"}}}, ["/webhook/limits/maxBodyBytes"]),
    ({"webhook": {"limits": {"idleTimeout": "120"}}}, ["/webhook/limits/idleTimeout"]),
    ({"webhook": {"limits": {"maxConnections": 0}}}, ["/webhook/limits/maxConnections"]),
    ({"webhook": {"clientCA": {"file": "x"}}}, ["/webhook/clientCA", "file"]),
    ({"networkPolicy": {"enabled": "yes"}}, ["/networkPolicy/enabled", "boolean"]),
    ({"networkPolicy": {"webhook": {"from": [{"ipBlock": {}}]}}}, ["/networkPolicy/webhook/from/0/ipBlock", "cidr"]),
    ({"networkPolicy": {"metrics": {"from": [{"namespace": "monitoring"}]}}}, ["/networkPolicy/metrics/from/0"]),
]


@pytest.mark.parametrize("values,words", BAD_VALUES, ids=[str(v) for v, _ in BAD_VALUES])
def test_schema_rejects_bad_values_readably(values, words):
    with pytest.raises(helm.HelmValuesError) as err:
        chartlib.render_templates(values)
    message = str(err.value)
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"
    # The same verdict without rendering, as `helm install` gives it before touching the cluster.
    with pytest.raises(helm.HelmValuesError):
        chartlib.load_chart().validate_schema(values)


def test_default_values_pass_the_schema():
    chartlib.load_chart().validate_schema({})
    chartlib.load_chart().validate_schema(chartlib.load_chart().values)


@pytest.mark.parametrize(
    "values,words",
    [
        ({"controller": {"leaderElection": {"enabled": False}}}, ["leaderElection", "replicas"]),
        ({"tls": {"existingSecret": "mine"}}, ["tls.caBundle"]),
        ({"certManager": {"enabled": True, "issuerRef": {"kind": "ClusterIssuer"}}}, ["issuerRef.name"]),
        ({"webhook": {"clientCA": {"configMap": "a", "secret": "b"}}}, ["webhook.clientCA", "not both"]),
    ],
)
def test_templates_refuse_contradictions(values, words):
    with pytest.raises(helm.HelmRenderError) as err:
        chartlib.render_templates(values)
    for word in words:
        assert word in str(err.value)


def test_single_controller_without_leader_election_is_allowed():
    docs = chartlib.all_docs(
        chartlib.render_manifests({"controller": {"replicas": 1, "leaderElection": {"enabled": False}}})
    )
    assert chartlib.one(docs, "Deployment", "volops-controller")["spec"]["replicas"] == 1
