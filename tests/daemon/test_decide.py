"""decide(): the one composition of remediation, fleet, reconcile and scaling (design §3.1, §3.8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from operatord.core.burst.actions import LaunchBurst, ReleaseBurst, SetReplicas
from operatord.core.burst.observed import CloudInstance
from operatord.core.decide import ReconcileBurst, decide, decide_detailed
from operatord.core.model import OwnerKind, Pod
from operatord.core.plan import Drain, RequestCapacity
from operatord.core.remediation import plan_remediation
from operatord.core.snapshot import CloudView, Snapshot
from operatord.core.state import OperatordState, Pause
from operatord.policies.model import Policy
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
    summarize,
)


def local(n: int) -> tuple:
    return tuple(a_node(f"gpu-{i:02d}") for i in range(n))


def scale_in_snapshot(*extra_nodes) -> Snapshot:
    """Low demand for long enough, one serving burst group an hour old: scaling releases it."""
    intent = a_serving_intent("b1")
    return Snapshot(
        NOW,
        nodes=(*local(3), *extra_nodes),
        metrics=metrics(0.5 * PER_REPLICA),
        replicas={MODEL: 2},
        demand_history={MODEL: flat(0.5 * PER_REPLICA)},
        cloud=CloudView(intents=(intent,), instances=None),
        pods=(),
        last_scale_out_at=NOW - timedelta(hours=2),
    )


def test_without_metrics_or_cloud_the_actions_are_remediations_own() -> None:
    policy = a_policy()
    snap = Snapshot(NOW, nodes=(*local(3), a_node("gpu-09", findings=[a_finding(first=NOW, node="gpu-09")])))
    plan = decide(snap, policy, NOW)
    assert plan.actions == plan_remediation(snap, policy, NOW).actions
    assert [a.kind for a in plan.actions] == ["cordon"]
    assert "hold:metrics_unknown:set_replicas" in summarize(plan)  # nothing scales on unknown load


def test_scale_in_releases_burst_when_nothing_drains() -> None:
    plan = decide(scale_in_snapshot(), a_policy(), NOW)
    assert [a.intent_id for a in plan.actions_of(ReleaseBurst)] == ["b1"]


def test_a_drain_holds_every_scale_in_of_the_same_tick() -> None:
    plan = decide(scale_in_snapshot(a_fatal_node("gpu-09")), a_policy(), NOW)
    assert [a.node for a in plan.actions_of(Drain)] == ["gpu-09"]
    assert not plan.actions_of(ReleaseBurst)
    assert not [a for a in plan.actions_of(SetReplicas) if a.replicas < a.previous]
    assert "hold:min_healthy_capacity:release_burst" in summarize(plan)


def test_a_capacity_request_of_this_plan_launches_its_replacement_in_the_same_tick() -> None:
    at = NOW - timedelta(minutes=10)
    degraded = a_finding(FaultClass.GPU_ECC_UNCORRECTABLE, fatal=False, action=FaultAction.DRAIN, first=at)
    sick = a_node(
        "gpu-03",
        findings=[replace(degraded, node="gpu-03")],
        history=a_history_cordoned(at),
        cordoned_by="operatord",
    )
    snap = Snapshot(
        NOW,
        nodes=(*local(3), sick),
        metrics=metrics(3.5 * PER_REPLICA),
        replicas={MODEL: 4},
        demand_history={MODEL: flat(3.5 * PER_REPLICA)},
        cloud=CloudView(instances=()),
        pods=(),
    )
    policy = a_policy()
    decision = decide_detailed(snap, policy, NOW)
    plan = decision.plan
    assert decision.demand_gpus == 32  # 4 replicas of 8 GPUs; draining gpu-03 would leave 24
    assert [a.node for a in plan.actions_of(RequestCapacity)] == ["gpu-03"]
    assert not plan.actions_of(Drain)  # the drain waits for the replacement
    launches = plan.actions_of(LaunchBurst)
    assert [a.replicas for a in launches] == [1]
    kinds = [a.kind for a in plan.actions]
    assert kinds.index("request_capacity") < kinds.index("launch_burst")  # stable order: remediation first


def a_history_cordoned(at):
    from operatord.core.health import HealthState
    from operatord.core.history import HistoryEntry

    return [HistoryEntry(at, "cordoned", "gpu_ecc_uncorrectable", "operatord", HealthState.CORDONED)]


def test_pause_holds_scaling_burst_and_reconcile_writes() -> None:
    snap = Snapshot(
        NOW,
        nodes=local(1),
        state=OperatordState(pause=Pause("incident 42", "human:ana", NOW)),
        metrics=metrics(6 * PER_REPLICA),
        replicas={MODEL: 1},
        demand_history={MODEL: flat(6 * PER_REPLICA)},
        cloud=CloudView(instances=()),
        pods=(),
    )
    plan = decide(snap, a_policy(), NOW)
    assert not plan.actions_of(LaunchBurst)
    assert not plan.actions_of(SetReplicas)
    assert "hold:paused:launch_burst" in summarize(plan)
    assert "hold:paused:set_replicas" in summarize(plan)


def test_unknown_metrics_neither_scale_in_nor_buy_capacity() -> None:
    snap = replace(scale_in_snapshot(), metrics=metrics(None), replicas={MODEL: 6})
    plan = decide(snap, a_policy(), NOW)
    assert not plan.actions_of(ReleaseBurst)
    assert not plan.actions_of(LaunchBurst)
    assert not plan.actions_of(SetReplicas)
    assert decide_detailed(snap, a_policy(), NOW).demand_gpus is None


def test_unknown_replicas_never_set_replicas_from_a_guess() -> None:
    snap = replace(scale_in_snapshot(), metrics=metrics(2.5 * PER_REPLICA), replicas={})
    plan = decide(snap, a_policy(), NOW)
    assert not plan.actions_of(SetReplicas)
    assert any(
        h.reason == "metrics_unknown" and h.detail.get("note") == "replicas not read" for h in plan.holds
    )


def orphan(age: timedelta) -> CloudInstance:
    return CloudInstance("i-0rphan", "p4d.24xlarge", "us-east-1a", "running", NOW - age, "gone-intent")


def test_orphans_are_reconciled_only_when_cloud_and_pods_were_observed() -> None:
    policy = a_policy()
    seen = Snapshot(NOW, nodes=local(2), cloud=CloudView(instances=(orphan(timedelta(hours=1)),)), pods=())
    [action] = decide(seen, policy, NOW).actions_of(ReconcileBurst)
    assert action.orphans == ("i-0rphan",)
    assert action.reason == "orphan_instance"
    young = replace(seen, cloud=CloudView(instances=(orphan(timedelta(seconds=10)),)))
    assert not decide(young, policy, NOW).actions_of(ReconcileBurst)  # inside the grace period
    blind = replace(seen, pods=None)
    plan = decide(blind, policy, NOW)
    assert not plan.actions_of(ReconcileBurst)
    assert "hold:stale_snapshot:reconcile_burst" in summarize(plan)


def test_pending_replicas_of_an_hpa_model_buy_burst_nodes() -> None:
    doc = a_policy().model_dump(by_alias=True)
    doc["serving"]["models"][0]["replica_owner"] = "hpa"
    policy = Policy.model_validate(doc)
    pending = tuple(
        Pod(
            "llm",
            f"vllm-70b-5d8f9c-{i}",
            None,
            controller_kind=OwnerKind.REPLICA_SET,
            controller_name="vllm-70b-5d8f9c",
            phase="Pending",
            gpus=8,
        )
        for i in range(2)
    )
    other = Pod(
        "llm",
        "other-7f-x",
        None,
        controller_kind=OwnerKind.REPLICA_SET,
        controller_name="other-7f",
        phase="Pending",
        gpus=8,
    )
    snap = Snapshot(
        NOW,
        nodes=local(2),
        metrics=metrics(2 * PER_REPLICA),
        replicas={MODEL: 4},
        demand_history={MODEL: flat(2 * PER_REPLICA)},
        cloud=CloudView(instances=()),
        pods=(*pending, other),
    )
    launches = decide(snap, policy, NOW).actions_of(LaunchBurst)
    assert sum(a.replicas for a in launches) == 2


def test_equal_inputs_give_an_equal_plan_in_a_stable_order() -> None:
    snap = scale_in_snapshot(
        a_fatal_node("gpu-09"), a_node("gpu-10", findings=[a_finding(first=NOW, node="gpu-10")])
    )
    first, second = decide(snap, a_policy(), NOW), decide(snap, a_policy(), NOW)
    assert first == second
    assert [a.key for a in first.actions] == [a.key for a in second.actions]
