"""Contract of operatord.ports.cluster.ClusterApi: FakeClusterApi and KubeClusterApi (over HTTP to
the API stand-in) must pass the same assertions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from operatord.core.model import (
    ConfigMap,
    CordonOwner,
    EvictResult,
    Lease,
    NodeCondition,
    Taint,
    WatchKind,
    human,
)
from operatord.ports.cluster import Conflict, Gone, NotFound
from operatord.vocab import ANNOTATION_CORDONED_BY, CONDITION_GPU_HEALTHY

from .conftest import World

AT = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_list_nodes_by_label_and_missing_node(world: World) -> None:
    world.node("gpu-1", pool="a")
    world.node("gpu-2", pool="b")
    world.node("gpu-3", pool="a")
    names = [n.name for n in world.api.list_nodes("operatord.io/pool=a").items]
    assert names == ["gpu-1", "gpu-3"]
    assert [
        n.name for n in world.api.list_nodes("operatord.io/pool in (b),kubernetes.io/hostname").items
    ] == ["gpu-2"]
    assert world.api.get_node("gpu-2").gpus == 8
    with pytest.raises(NotFound):
        world.api.get_node("nope")


def test_cordon_records_owner_and_is_idempotent(world: World) -> None:
    world.node("gpu-1")
    node, changed = world.api.cordon("gpu-1", CordonOwner("operatord", "gpu_fallen_off_bus", AT))
    assert changed
    assert node.unschedulable
    assert node.cordon_owner == CordonOwner("operatord", "gpu_fallen_off_bus", AT)
    again, changed = world.api.cordon("gpu-1", CordonOwner(human("alice"), "other", AT))
    assert not changed
    assert again.annotations[ANNOTATION_CORDONED_BY] == "operatord"  # first owner stays
    assert again.resource_version == node.resource_version


def test_uncordon_clears_owner_and_is_idempotent(world: World) -> None:
    world.node("gpu-1")
    world.api.cordon("gpu-1", CordonOwner("operatord", "x", AT))
    node, changed = world.api.uncordon("gpu-1")
    assert changed
    assert not node.unschedulable
    assert node.cordon_owner is None
    assert ANNOTATION_CORDONED_BY not in node.annotations
    _, changed = world.api.uncordon("gpu-1")
    assert not changed


def test_stale_resource_version_conflicts(world: World) -> None:
    first = world.node("gpu-1")
    world.api.patch_node_annotations("gpu-1", {"a": "1"})
    with pytest.raises(Conflict):
        world.api.cordon("gpu-1", CordonOwner("operatord", "x", AT), resource_version=first.resource_version)
    with pytest.raises(Conflict):
        world.api.uncordon("gpu-1", resource_version=first.resource_version)
    with pytest.raises(Conflict):
        world.api.patch_node_annotations("gpu-1", {"b": "2"}, resource_version=first.resource_version)
    assert not world.api.get_node("gpu-1").unschedulable


def test_annotations_set_and_remove(world: World) -> None:
    node = world.node("gpu-1", annotations={"keep": "1", "drop": "2"})
    out = world.api.patch_node_annotations(
        "gpu-1", {"drop": None, "new": "3"}, resource_version=node.resource_version
    )
    assert dict(out.annotations) == {"keep": "1", "new": "3"}
    assert out.resource_version != node.resource_version


def test_node_condition_upsert_by_type(world: World) -> None:
    world.node("gpu-1")
    cond = NodeCondition(CONDITION_GPU_HEALTHY, "False", "GpuFallenOffBus", "xid-79 line")
    node = world.api.set_node_condition("gpu-1", cond)
    assert [c.type for c in node.conditions] == ["Ready", CONDITION_GPU_HEALTHY]
    first = node.condition(CONDITION_GPU_HEALTHY)
    assert first is not None
    assert first.status == "False"
    assert first.last_transition_time is not None
    node = world.api.set_node_condition(
        "gpu-1", NodeCondition(CONDITION_GPU_HEALTHY, "False", "GpuFallenOffBus", "again")
    )
    again = node.condition(CONDITION_GPU_HEALTHY)
    assert again is not None
    assert again.message == "again"
    assert again.last_transition_time == first.last_transition_time  # same status: no transition
    assert len(node.conditions) == 2
    assert node.ready


def test_taints_idempotent(world: World) -> None:
    world.node("gpu-1", taints=[{"key": "other", "effect": "NoSchedule"}])
    taint = Taint("operatord.io/quarantine", "NoSchedule", "gpu_fallen_off_bus")
    node, changed = world.api.add_taint("gpu-1", taint)
    assert changed
    assert taint in node.taints
    assert len(node.taints) == 2
    _, changed = world.api.add_taint("gpu-1", taint)
    assert not changed
    node, changed = world.api.remove_taint("gpu-1", taint.key, taint.effect)
    assert changed
    assert [t.key for t in node.taints] == ["other"]
    _, changed = world.api.remove_taint("gpu-1", taint.key, taint.effect)
    assert not changed


def test_pods_selected_by_node_and_label(world: World) -> None:
    world.pod("a", node="gpu-1", labels={"app": "vllm"})
    world.pod("b", node="gpu-2", labels={"app": "vllm"})
    world.pod("c", node="gpu-1", labels={"app": "other"}, namespace="ops")
    assert [p.name for p in world.api.list_pods(node_name="gpu-1").items] == ["a", "c"]
    assert [p.name for p in world.api.list_pods(label_selector="app=vllm").items] == ["a", "b"]
    assert [p.name for p in world.api.list_pods(namespace="ops").items] == ["c"]
    assert [p.name for p in world.api.list_pods(node_name="gpu-1", label_selector="app!=vllm").items] == ["c"]


def test_pod_fields_translated(world: World) -> None:
    world.pod("ds", node="gpu-1", owner="DaemonSet", gpus=0)
    world.pod("m", node="gpu-1", owner="Node", mirror=True)
    world.pod("lone", node="gpu-1", owner=None, emptydir=True, grace_s=45)
    world.pod("srv", node="gpu-1", owner="ReplicaSet", gpus=8)
    pods = {p.name: p for p in world.api.list_pods(node_name="gpu-1").items}
    assert pods["ds"].controller_kind == "DaemonSet"
    assert pods["m"].mirror
    assert pods["lone"].controller_kind is None
    assert pods["lone"].has_emptydir
    assert pods["lone"].termination_grace_s == 45
    assert pods["srv"].gpus == 8
    assert pods["srv"].ready


def test_evict_without_pdb_removes_pod(world: World) -> None:
    world.pod("a", node="gpu-1")
    assert world.api.evict("default", "a").result == EvictResult.EVICTED
    assert world.api.list_pods(node_name="gpu-1").items == ()
    assert world.api.evict("default", "a").result == EvictResult.GONE


def test_evict_blocked_by_pdb_then_allowed(world: World) -> None:
    world.pod("a", node="gpu-1", labels={"app": "vllm"})
    world.pod("b", node="gpu-2", labels={"app": "vllm"})
    world.pdb("vllm", {"app": "vllm"}, min_available=2)
    out = world.api.evict("default", "a")
    assert out.result == EvictResult.BLOCKED
    assert "disruption budget" in out.message
    assert len(world.api.list_pods().items) == 2
    world.pod("c", node="gpu-3", labels={"app": "vllm"})  # a replacement replica: one may go
    assert world.api.evict("default", "a").result == EvictResult.EVICTED
    assert world.api.evict("default", "b").result == EvictResult.BLOCKED


def test_evict_max_unavailable_percent(world: World) -> None:
    for i in range(4):
        world.pod(f"p{i}", node="gpu-1", labels={"app": "x"})
    world.pdb("x", {"app": "x"}, max_unavailable="25%")
    # 4 expected, 25 % → 1 may be unavailable: the first eviction passes, the second would leave 2 of 3 needed
    assert world.api.evict("default", "p0").result == EvictResult.EVICTED
    assert world.api.evict("default", "p1").result == EvictResult.BLOCKED
    world.pod("p4", node="gpu-2", labels={"app": "x"})  # the controller's replacement is Ready
    assert world.api.evict("default", "p1").result == EvictResult.EVICTED


def test_evict_two_pdbs_is_failed_not_raised(world: World) -> None:
    world.pod("a", node="gpu-1", labels={"app": "x", "tier": "y"})
    world.pdb("one", {"app": "x"}, min_available=0)
    world.pdb("two", {"tier": "y"}, min_available=0)
    out = world.api.evict("default", "a")
    assert out.result == EvictResult.FAILED
    assert "more than one PodDisruptionBudget" in out.message


def test_delete_pod_and_annotations(world: World) -> None:
    world.pod("a", node="gpu-1")
    pod = world.api.patch_pod_annotations(
        "default", "a", {"controller.kubernetes.io/pod-deletion-cost": "-100"}
    )
    assert pod.annotations["controller.kubernetes.io/pod-deletion-cost"] == "-100"
    assert world.api.delete_pod("default", "a", grace_period_s=0)
    assert not world.api.delete_pod("default", "a")


def test_configmap_compare_and_set(world: World) -> None:
    cm = world.configmap("operatord", "operatord-state", {"state": "{}"})
    with pytest.raises(Conflict):
        world.api.create_configmap(ConfigMap("operatord", "operatord-state", {}))
    newer = world.api.replace_configmap(
        ConfigMap("operatord", "operatord-state", {"state": "1"}, resource_version=cm.resource_version)
    )
    assert world.api.get_configmap("operatord", "operatord-state").data == {"state": "1"}
    with pytest.raises(Conflict):
        world.api.replace_configmap(
            ConfigMap("operatord", "operatord-state", {"state": "2"}, resource_version=cm.resource_version)
        )
    with pytest.raises(Conflict):
        world.api.delete_configmap("operatord", "operatord-state", resource_version=cm.resource_version)
    world.api.delete_configmap("operatord", "operatord-state", resource_version=newer.resource_version)
    with pytest.raises(NotFound):
        world.api.get_configmap("operatord", "operatord-state")


def test_configmaps_listed_by_label(world: World) -> None:
    world.api.create_configmap(
        ConfigMap("operatord", "operatord-intent-a", {}, labels={"operatord.io/intent": "a"})
    )
    world.api.create_configmap(ConfigMap("operatord", "other", {}))
    names = [c.name for c in world.api.list_configmaps("operatord", "operatord.io/intent").items]
    assert names == ["operatord-intent-a"]


def test_lease_compare_and_set(world: World) -> None:
    lease = world.api.create_lease(Lease("operatord", "leader", holder="a", renewed_at=AT))
    with pytest.raises(Conflict):
        world.api.create_lease(Lease("operatord", "leader", holder="b"))
    taken = world.api.replace_lease(
        Lease(
            "operatord",
            "leader",
            holder="b",
            transitions=1,
            renewed_at=AT,
            resource_version=lease.resource_version,
        )
    )
    assert world.api.get_lease("operatord", "leader").holder == "b"
    assert taken.transitions == 1
    assert taken.renewed_at == AT
    with pytest.raises(Conflict):
        world.api.replace_lease(
            Lease("operatord", "leader", holder="c", resource_version=lease.resource_version)
        )


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "LeaderWorkerSet"])
def test_scale_subresource(world: World, kind: str) -> None:
    key = world.workload(kind, "llm", "vllm", 2)
    scale = world.api.get_scale(key)
    assert scale.replicas == 2
    out = world.api.set_scale(key, 5, resource_version=scale.resource_version)
    assert out.replicas == 5
    assert world.api.get_scale(key).replicas == 5
    with pytest.raises(Conflict):
        world.api.set_scale(key, 1, resource_version=scale.resource_version)


def test_watch_from_version_then_gone_after_compaction(world: World) -> None:
    world.node("gpu-1")
    listing = world.api.list_nodes()
    world.api.cordon("gpu-1", CordonOwner("operatord", "x", AT))
    world.node("gpu-2")
    events = list(world.api.watch_nodes(listing.resource_version, timeout_s=1))
    assert [(e.kind, e.obj.name) for e in events] == [
        (WatchKind.MODIFIED, "gpu-1"),
        (WatchKind.ADDED, "gpu-2"),
    ]
    assert events[0].obj.unschedulable
    world.compact()
    with pytest.raises(Gone):
        list(world.api.watch_nodes(listing.resource_version, timeout_s=1))


def test_watch_pods_on_a_node(world: World) -> None:
    listing = world.api.list_pods(node_name="gpu-1")
    world.pod("a", node="gpu-1")
    world.pod("b", node="gpu-2")
    world.api.evict("default", "a")
    events = list(world.api.watch_pods(listing.resource_version, node_name="gpu-1", timeout_s=1))
    assert [(e.kind, e.obj.name) for e in events] == [(WatchKind.ADDED, "a"), (WatchKind.DELETED, "a")]


def test_delete_node(world: World) -> None:
    world.node("burst-1")
    world.api.delete_node("burst-1")
    with pytest.raises(NotFound):
        world.api.delete_node("burst-1")


def test_scale_in_lowers_what_a_pdb_expects(world: World) -> None:
    """After a scale-in the budget counts the replicas that are left, not the ones removed."""
    key = world.workload("Deployment", "default", "vllm", 3)
    for i in range(3):
        world.pod(f"p{i}", node=f"gpu-{i}", labels={"app": "vllm"})
    world.pdb("vllm", {"app": "vllm"}, max_unavailable=1)
    assert world.api.evict("default", "p0").result == EvictResult.EVICTED  # 3 expected, 1 may go
    world.pod("p3", node="gpu-3", labels={"app": "vllm"})  # the controller's replacement for p0
    world.api.set_scale(key, 2)
    world.api.delete_pod("default", "p3")  # the scale-in removes a replica
    # 2 expected now, 1 may go; still expecting 3 would leave 2 of 2 needed and block every drain
    assert world.api.evict("default", "p1").result == EvictResult.EVICTED
    assert world.api.evict("default", "p2").result == EvictResult.BLOCKED
