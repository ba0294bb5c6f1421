"""Watch with relist on 410 (both backends), and what only the Kubernetes adapter does: Events,
error classification, config loading, and the compare-and-set requests it actually sends."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from kubernetes import client

from operatord.adapters.k8s import ConfigError, KubeClusterApi, load_api_client
from operatord.core.model import CordonOwner, Event, WatchEvent, WatchKind
from operatord.ports.cluster import ClusterError, Unreachable
from operatord.shell.watch import Relisted, follow_nodes
from operatord.testing.harness import write_kubeconfig
from operatord.testing.kube_server import KubeStandIn

from .conftest import World


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
