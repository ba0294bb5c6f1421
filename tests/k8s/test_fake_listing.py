"""FakeClusterApi reuses a listing only while nothing it lists changed (the simulator lists the
same objects many times a tick); every write shows in the next list, and every call is logged."""

from __future__ import annotations

import pytest

from operatord.core.model import CordonOwner, Node, Pod
from operatord.ports.cluster import ClusterError
from operatord.testing.fakes import FakeClusterApi


def _api() -> FakeClusterApi:
    api = FakeClusterApi()
    api.add_node(Node("gpu-1", labels={"operatord.io/pool": "a"}, gpus=8))
    api.add_node(Node("gpu-2", labels={"operatord.io/pool": "b"}, gpus=8))
    api.add_pod(Pod("llm", "r-1", node_name="gpu-1", labels={"app": "r"}, gpus=8))
    return api


def test_node_listing_is_kept_until_a_node_changes() -> None:
    api = _api()
    first = api.list_nodes()
    api.add_pod(Pod("llm", "r-2", labels={"app": "r"}, gpus=8))  # a pod write leaves nodes as they were
    assert api.list_nodes() is first
    api.cordon("gpu-2", CordonOwner("operatord", "x"))
    after = api.list_nodes()
    assert after is not first
    assert [n.unschedulable for n in after.items] == [False, True]
    api.delete_node("gpu-1")
    assert [n.name for n in api.list_nodes().items] == ["gpu-2"]
    assert [n.name for n in api.list_nodes("operatord.io/pool=b").items] == ["gpu-2"]


def test_pod_listing_is_kept_until_a_pod_changes() -> None:
    api = _api()
    first = api.list_pods(namespace="llm")
    api.cordon("gpu-1", CordonOwner("operatord", "x"))  # a node write leaves pods as they were
    assert api.list_pods(namespace="llm") is first
    assert [p.name for p in api.list_pods(label_selector="app=r").items] == ["r-1"]
    api.add_pod(Pod("llm", "r-2", labels={"app": "r"}, gpus=8))
    assert [p.name for p in api.list_pods(namespace="llm").items] == ["r-1", "r-2"]
    api.remove_pod("llm", "r-1")
    assert [p.name for p in api.list_pods(namespace="llm", label_selector="app=r").items] == ["r-2"]
    assert api.list_pods(node_name="gpu-1").items == ()
    api.patch_pod_annotations("llm", "r-2", {"note": "x"})
    assert api.list_pods(namespace="llm").items[0].annotations == {"note": "x"}


def test_every_list_is_logged_and_a_bad_selector_always_fails() -> None:
    api = _api()
    api.list_nodes()
    api.list_nodes()
    assert [c.method for c in api.calls].count("list_nodes") == 2
    for _ in range(2):
        with pytest.raises(ClusterError) as err:
            api.list_pods(label_selector="app in (r")
        assert err.value.status == 400
