"""decide() invariants over generated snapshots: deterministic; unknown load never scales in or
buys capacity; a drain never shares a tick with scale-in; pause stops every automatic write."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.decide import ReconcileBurst, decide, is_scale_in
from operatord.core.plan import Cordon, Drain, Uncordon
from operatord.core.snapshot import CloudView, Snapshot
from operatord.core.state import OperatordState, Pause
from operatord.vocab import FaultAction, FaultClass

from .conftest import (
    MODEL,
    NOW,
    PER_REPLICA,
    a_fatal_node,
    a_finding,
    a_node,
    a_policy,
    a_serving_intent,
    flat,
    metrics,
)

POLICY = a_policy()


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    n = draw(st.integers(2, 8))
    nodes = []
    for i in range(n):
        name = f"gpu-{i:02d}"
        kind = draw(st.sampled_from(["healthy", "healthy", "fresh_fault", "degraded", "cordoned_fatal"]))
        if kind == "fresh_fault":
            nodes.append(a_node(name, findings=[a_finding(first=NOW - timedelta(minutes=1), node=name)]))
        elif kind == "degraded":
            f = a_finding(
                FaultClass.GPU_ECC_UNCORRECTABLE,
                fatal=False,
                action=FaultAction.DRAIN,
                node=name,
                first=NOW - timedelta(hours=1),
            )
            nodes.append(a_node(name, findings=[f]))
        elif kind == "cordoned_fatal":
            nodes.append(a_fatal_node(name))
        else:
            nodes.append(a_node(name))
    demand = draw(st.one_of(st.none(), st.floats(0, 12).map(lambda r: r * PER_REPLICA)))
    replicas = draw(st.integers(1, 10))
    intents = tuple(a_serving_intent(f"b{k}") for k in range(draw(st.integers(0, 2))))
    paused = draw(st.integers(0, 3)) == 0
    return Snapshot(
        NOW,
        nodes=tuple(nodes),
        state=OperatordState(pause=Pause("test", "human:t", NOW) if paused else None),
        metrics=metrics(demand) if draw(st.booleans()) or demand is not None else None,
        replicas={MODEL: replicas} if draw(st.booleans()) else {},
        demand_history={MODEL: flat(demand)} if demand is not None else {},
        cloud=CloudView(
            intents=intents, instances=None if intents else ()
        ),  # reconcile aside: scale-in shows
        pods=(),
        last_scale_out_at=NOW - timedelta(hours=1),
    )


@settings(max_examples=150, deadline=None)
@given(snap=snapshots())
def test_decide_invariants(snap: Snapshot) -> None:
    plan = decide(snap, POLICY, NOW)
    assert plan == decide(snap, POLICY, NOW)
    assert len({a.key for a in plan.actions}) == len(plan.actions)
    load_known = snap.metrics is not None and bool(snap.demand_history)
    if not load_known:
        assert not [a for a in plan.actions if is_scale_in(a)]
        assert not plan.actions_of(LaunchBurst)  # unknown demand buys nothing
    if plan.actions_of(Drain):
        assert not [a for a in plan.actions if is_scale_in(a)]
    if snap.state.pause is not None:
        for kind in (SetReplicas, LaunchBurst, ReleaseBurst, ReconcileBurst, Cordon, Drain, Uncordon):
            assert not plan.actions_of(kind), kind
    if MODEL not in snap.replicas:
        assert not plan.actions_of(SetReplicas)
    event(f"actions: {sorted({a.kind for a in plan.actions})}")
