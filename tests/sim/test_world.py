"""The simulated world plays Kubernetes' parts faithfully enough for operatord's decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from operatord.shell.burst import BURST_DELETION_COST, DELETION_COST_ANNOTATION
from operatord.sim.runner import load_scenario_policy, load_trace
from operatord.sim.scenario import ScenarioError, load, resolve
from operatord.sim.world import World
from operatord.vocab import LABEL_INSTANCE_ID


@pytest.fixture
def world() -> World:
    path = resolve("drain-needs-capacity")  # 8 local nodes, 8 replicas
    scenario = load(path)
    return World(scenario, load_scenario_policy(scenario, path), load_trace(scenario, path))


def _pods(world: World) -> list:
    return list(world.api.list_pods(namespace=world.workload.namespace).items)


def test_starts_with_the_initial_replicas_ready_on_local_nodes(world: World) -> None:
    pods = _pods(world)
    assert len(pods) == 8
    assert all(p.ready and p.node_name and p.node_name.startswith("gpu-") for p in pods)


def test_a_burst_instance_registers_then_gets_gpus_then_serves_after_the_model_loads(world: World) -> None:
    start = world.now
    world.instance_launched("i-1", "p4d.24xlarge", "us-east-1b", start)
    inst = world.instances["i-1"]
    world.api.set_scale(world.workload, 9)
    world.step(inst.registered_at)
    node = next(n for n in world.api.list_nodes().items if n.labels.get(LABEL_INSTANCE_ID) == "i-1")
    assert node.gpus == 0  # registered before the device plugin advertises GPUs
    world.step(inst.gpu_ready_at + timedelta(seconds=1))
    pending = [p for p in _pods(world) if p.node_name == node.name]
    assert len(pending) == 1
    assert not pending[0].ready
    world.step(inst.gpu_ready_at + world.scenario.serving.model_load_burst + timedelta(seconds=2))
    assert [p.ready for p in _pods(world) if p.node_name == node.name] == [True]


def test_scale_in_removes_the_lowest_deletion_cost_first(world: World) -> None:
    victim = _pods(world)[5]
    world.api.patch_pod_annotations(
        victim.namespace, victim.name, {DELETION_COST_ANNOTATION: BURST_DELETION_COST}
    )
    world.api.set_scale(world.workload, 7)
    world.step(world.now + timedelta(seconds=30))
    assert victim.name not in {p.name for p in _pods(world)}
    assert len(_pods(world)) == 7


def test_a_terminated_instance_takes_its_node_and_pods_away(world: World) -> None:
    world.instance_launched("i-2", "p4d.24xlarge", "us-east-1b", world.now)
    inst = world.instances["i-2"]
    world.step(inst.gpu_ready_at + timedelta(seconds=1))
    world.instance_terminated("i-2", world.now)
    world.step(world.now + timedelta(seconds=30))
    assert not [n for n in world.api.list_nodes().items if n.labels.get(LABEL_INSTANCE_ID) == "i-2"]


def test_a_policy_with_two_models_is_refused_with_both_named() -> None:
    path = resolve("drain-needs-capacity")
    scenario = load(path)
    loaded = load_scenario_policy(scenario, path)
    first = loaded.policy.serving.models[0]
    second = first.model_copy(update={"name": "qwen-7b"})
    serving = loaded.policy.serving.model_copy(update={"models": [first, second]})
    two = replace(loaded, policy=loaded.policy.model_copy(update={"serving": serving}))
    with pytest.raises(ScenarioError, match=rf"policy has 2 \({first.name}, qwen-7b\)"):
        World(scenario, two, load_trace(scenario, path))
