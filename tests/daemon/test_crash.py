"""Crash safety: operatord killed at any write — a Kubernetes write (cordon, history, Event, state,
intent, Lease, scale) or a cloud call (launch, terminate), before or after it took effect — and
restarted as a new replica converges: no duplicate launch, no orphan instance, no stuck cordon.

Every write of the first ticks of a scenario (cordon a faulty node, drain it, launch and
reconcile its burst replacement) is a crash point; the cases are enumerated, not sampled.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from operatord.core.burst.intent import from_json
from operatord.shell.intents import DATA_KEY
from operatord.vocab import ANNOTATION_CORDONED_BY, LABEL_INTENT

from .world import NAMESPACE, World

CLUSTER_WRITES = frozenset(
    {
        "patch_node_annotations",
        "set_node_condition",
        "cordon",
        "uncordon",
        "add_taint",
        "remove_taint",
        "delete_node",
        "evict",
        "delete_pod",
        "patch_pod_annotations",
        "create_event",
        "create_lease",
        "replace_lease",
        "create_configmap",
        "replace_configmap",
        "delete_configmap",
        "set_scale",
    }
)
CLOUD_WRITES = frozenset({"launch", "terminate"})
FIRST_TICKS = 4  # cordon, drain + launch, hand-off + reconcile, steady


class Crash(BaseException):
    """The process died here (BaseException: nothing in operatord may catch it, as with SIGKILL)."""


class CrashAt:
    """Counts writes across the wrapped ports and kills the process at write number `at`."""

    def __init__(self, at: int | None, after: bool) -> None:
        self.at, self.after, self.count = at, after, 0

    def wrap(self, target: Any, writes: frozenset[str]) -> Any:
        crash = self

        class Proxy:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(target, name)
                if name not in writes:
                    return attr

                def call(*args: Any, **kwargs: Any) -> Any:
                    crash.count += 1
                    hit = crash.count == crash.at
                    if hit and not crash.after:
                        raise Crash(name)
                    out = attr(*args, **kwargs)
                    if hit:
                        raise Crash(name)
                    return out

                return call

            @property
            def cluster(self) -> str:
                return str(getattr(target, "cluster", ""))

        return Proxy()


def step(w: World) -> None:
    w.clock.advance(30)
    w.kubelet()


def first_ticks(w: World, crash: CrashAt) -> bool:
    """The first replica's life; True when it was killed."""
    d = w.daemon(
        "first",
        cluster=crash.wrap(w.cluster, CLUSTER_WRITES),
        capacity=crash.wrap(w.capacity, CLOUD_WRITES),
    )
    try:
        for _ in range(FIRST_TICKS):
            d.renew()
            d.tick()
            step(w)
    except Crash:
        return True
    finally:
        d.observer.close()
    return False


def converge(w: World, ticks: int = 24) -> None:
    """A new replica (new identity) waits out the dead one's Lease, then runs."""
    d = w.daemon("second")
    try:
        for _ in range(ticks):
            d.renew()
            d.tick()
            step(w)
    finally:
        d.observer.close()


def clean_write_count() -> int:
    w = World().seed()
    crash = CrashAt(None, after=False)
    assert not first_ticks(w, crash)
    return crash.count


WRITES = clean_write_count()
CASES = [(k, after) for k in range(1, WRITES + 1) for after in (False, True)]


def check_converged(w: World) -> None:
    live = [i for i in w.capacity.list_instances() if not i.gone]
    intents = [
        from_json(json.loads(cm.data[DATA_KEY]))
        for cm in w.cluster.list_configmaps(NAMESPACE, label_selector=LABEL_INTENT).items
    ]
    tracked = {r.instance_id for i in intents for r in i.instances if r.state.live}
    launched = [c for c in w.capacity.calls if c.op == "launch" and c.outcome == "launched"]
    # no duplicate launch: one replica was missing, one instance was ever launched
    assert sum(len(c.instance_ids) for c in launched) == 1, launched
    # no orphan: every live instance is on a live intent record, and it serves
    assert {i.instance_id for i in live} == tracked
    assert len(live) == 1
    states = [r.state.value for i in intents for r in i.instances if r.state.live]
    assert states == ["serving"]
    # no stuck cordon: only the faulty node is cordoned, by operatord, drained and handed off
    nodes = {n.name: n for n in w.cluster.list_nodes().items}
    assert sorted(n for n, node in nodes.items() if node.unschedulable) == ["gpu-03"]
    assert nodes["gpu-03"].annotations.get(ANNOTATION_CORDONED_BY) == "operatord"
    repair = nodes["gpu-03"].condition("OperatordAwaitingRepair")
    assert repair is not None
    assert repair.status == "True"
    assert not w.cluster.list_pods(node_name="gpu-03").items


def test_the_scenario_has_crash_points_in_every_part() -> None:
    w = World().seed()
    crash = CrashAt(None, after=False)
    first_ticks(w, crash)
    kinds = {c.method for c in w.cluster.calls} | {c.op for c in w.capacity.calls}
    assert {"cordon", "evict", "create_configmap", "replace_configmap", "launch", "create_event"} <= kinds
    assert WRITES >= 15


def test_without_a_crash_the_scenario_converges() -> None:
    w = World().seed()
    assert not first_ticks(w, CrashAt(None, after=False))
    converge(w)
    check_converged(w)


@pytest.mark.parametrize(
    ("at", "after"), CASES, ids=[f"write{k}-{'after' if a else 'before'}" for k, a in CASES]
)
def test_killed_at_any_write_and_restarted_it_converges(at: int, after: bool) -> None:
    w = World().seed()
    assert first_ticks(w, CrashAt(at, after))
    converge(w)
    check_converged(w)
