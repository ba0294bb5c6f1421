"""Watch with relist on 410 (both backends), and what only the Kubernetes adapter does: Events,
error classification, config loading, and the compare-and-set requests it actually sends."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from kubernetes import client

from operatord.adapters.k8s import ConfigError, KubeClusterApi, load_api_client
from operatord.core.burst.actions import SetReplicas
from operatord.core.model import CordonOwner, Event, WatchEvent, WatchKind
from operatord.core.plan import Plan
from operatord.ports.cluster import ClusterError, Unreachable
from operatord.shell import burst_apply  # noqa: F401  (registers the SetReplicas executor)
from operatord.shell.apply import ApplyContext, apply_plan
from operatord.shell.watch import Relisted, follow_nodes
from operatord.testing import kubeobjects as k
from operatord.testing.harness import write_kubeconfig
from operatord.testing.kube_server import KubeStandIn
from operatord.vocab import Mode

from .conftest import World, a_policy


def test_follow_relists_after_gone_and_resumes(world: World) -> None:
    world.node("gpu-1")
    stream = follow_nodes(world.api, timeout_s=1, max_watches=3)
    first = next(stream)
    assert isinstance(first, Relisted)
    assert [n.name for n in first.items] == ["gpu-1"]
    world.node("gpu-2")
    event = next(stream)
    assert isinstance(event, WatchEvent)
    assert (event.kind, event.obj.name) == (WatchKind.ADDED, "gpu-2")
    world.node("gpu-3")
    world.compact()  # history before now is gone: the watch from gpu-2's version gets 410
    rest = list(stream)
    relisted = [r for r in rest if isinstance(r, Relisted)]
    assert len(relisted) == 1
    assert [n.name for n in relisted[0].items] == ["gpu-1", "gpu-2", "gpu-3"]


def test_events_are_written_with_reason_and_involved_node(
    standin: KubeStandIn, kube_api: KubeClusterApi
) -> None:
    kube_api.create_event(
        Event("Node", "gpu-1", "gpu_fallen_off_bus", "cordoned by operatord", "Warning", action="Cordon")
    )
    (event,) = standin.list("Event", "default")
    assert event["reason"] == "gpu_fallen_off_bus"
    assert event["involvedObject"] == {"kind": "Node", "name": "gpu-1", "apiVersion": "v1"}
    assert event["type"] == "Warning"
    assert event["source"] == {"component": "operatord"}


def test_a_workload_event_lives_in_its_namespace_and_names_its_api_version(
    standin: KubeStandIn, kube_api: KubeClusterApi
) -> None:
    """The daemon's scaling write through the apply path, over HTTP with the official client: its
    Event is about the Deployment (apps/v1) and lives in the Deployment's namespace, as the API
    server demands of a namespaced object's Event."""
    standin.create(k.workload("vllm-70b", namespace="llm", replicas=1))
    action = SetReplicas(
        key="sr",
        reason="demand_over_supply",
        model="llama-70b",
        workload_kind="Deployment",
        namespace="llm",
        name="vllm-70b",
        replicas=2,
        previous=1,
    )
    ctx = ApplyContext(kube_api, "operatord", a_policy(), Mode.FULL)
    assert [o.status for o in apply_plan(Plan((action,)), ctx)] == ["applied"]
    assert standin.list("Event", "default") == []
    (event,) = standin.list("Event", "llm")
    assert event["involvedObject"] == {
        "kind": "Deployment",
        "name": "vllm-70b",
        "namespace": "llm",
        "apiVersion": "apps/v1",
    }
    assert (event["reason"], event["type"], event["action"]) == (
        "demand_over_supply",
        "Normal",
        "SetReplicas",
    )
    assert "runbooks/demand_over_supply.md" in event["message"]
    found = _core(standin).list_namespaced_event(
        "llm", field_selector="involvedObject.kind=Deployment,involvedObject.apiVersion=apps/v1"
    )
    assert [e.involved_object.name for e in found.items] == ["vllm-70b"]


def test_a_configmap_event_lives_in_the_configmaps_namespace(
    standin: KubeStandIn, kube_api: KubeClusterApi
) -> None:
    kube_api.create_event(
        Event(
            "ConfigMap", "operatord-state", "breaker_open", "breaker opened", "Warning", namespace="operatord"
        )
    )
    (event,) = standin.list("Event", "operatord")
    assert event["involvedObject"] == {
        "kind": "ConfigMap",
        "name": "operatord-state",
        "namespace": "operatord",
        "apiVersion": "v1",
    }


@pytest.mark.parametrize(
    ("lives_in", "about"),
    [("default", "llm"), ("operatord", None)],
    ids=["namespaced-object-elsewhere", "cluster-scoped-object-outside-default"],
)
def test_the_standin_rejects_an_event_outside_its_objects_namespace(
    standin: KubeStandIn, lives_in: str, about: str | None
) -> None:
    involved = {"kind": "Deployment" if about else "Node", "name": "x", "apiVersion": "v1"}
    if about:
        involved["namespace"] = about
    body = {"metadata": {"generateName": "x."}, "involvedObject": involved, "reason": "r", "message": "m"}
    with pytest.raises(client.ApiException) as err:
        _core(standin).create_namespaced_event(lives_in, body)
    assert err.value.status == 422
    assert "does not match event.namespace" in err.value.body
    assert standin.list("Event") == []


def _core(standin: KubeStandIn) -> client.CoreV1Api:
    return client.CoreV1Api(client.ApiClient(client.Configuration(host=standin.url)))


def test_cordon_is_conditioned_on_the_version_it_read(standin: KubeStandIn, kube_api: KubeClusterApi) -> None:
    standin.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-1"}})
    version = standin.get("Node", "gpu-1")["metadata"]["resourceVersion"]  # type: ignore[index]
    kube_api.cordon("gpu-1", CordonOwner("operatord", "x"))
    patches = [p for m, p in standin.requests if m == "PATCH"]
    assert patches == ["/api/v1/nodes/gpu-1"]
    assert version  # the stand-in rejects a stale one (contract suite); here: it was sent at all
    # a concurrent writer between read and write makes the adapter re-read, not overwrite
    standin.fail_next("PATCH", "/api/v1/nodes/gpu-2$", 409, "the object has been modified")
    standin.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-2"}})
    node, changed = kube_api.cordon("gpu-2", CordonOwner("operatord", "x"))
    assert changed
    assert node.unschedulable
    assert [m for m, p in standin.requests if p == "/api/v1/nodes/gpu-2"] == ["GET", "PATCH", "GET", "PATCH"]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        pytest.param(503, Unreachable, id="503-is-unreachable"),
        pytest.param(500, ClusterError, id="500-is-an-error-with-status"),
        pytest.param(403, ClusterError, id="403-is-an-error-with-status"),
    ],
)
def test_errors_are_classified(standin: KubeStandIn, kube_api: KubeClusterApi, code: int, kind: type) -> None:
    standin.fail_next("GET", "/api/v1/nodes$", code, "no")
    with pytest.raises(kind) as info:
        kube_api.list_nodes()
    assert info.value.status == code


def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = client.Configuration(host=f"http://127.0.0.1:{port}")
    cfg.retries = 0
    api = KubeClusterApi(client.ApiClient(cfg), request_timeout_s=2)
    with pytest.raises(Unreachable):
        api.list_nodes()


def test_kubeconfig_loading(tmp_path: Path, standin: KubeStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = write_kubeconfig(tmp_path / "kubeconfig", standin.url)
    api = KubeClusterApi(load_api_client(path))
    assert api.list_nodes().items == ()
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert KubeClusterApi.connect().list_nodes().items == ()
    with pytest.raises(ConfigError, match="no kubeconfig"):
        load_api_client(tmp_path / "missing")
    (tmp_path / "bad").write_text(json.dumps({"apiVersion": "v1", "kind": "Config"}))
    with pytest.raises(ConfigError):
        load_api_client(tmp_path / "bad")
