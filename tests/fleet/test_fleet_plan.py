"""What operatord does about skew: conditions and Events on change, guarded cordons, no flapping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from operatord.core.fleet import SetStackCondition, check_fleet, holds_cordon, plan_fleet
from operatord.core.model import CordonOwner, Node, NodeCondition, frozen_map
from operatord.core.plan import Cordon
from operatord.core.state import Breaker, OperatordState, Pause
from operatord.policies.model import Policy
from operatord.shell import fleet_apply  # noqa: F401  (registers the executor)
from operatord.shell.apply import ApplyContext, apply_plan
from operatord.testing.fakes import FakeClusterApi
from operatord.vocab import ANNOTATION_CORDON_REASON, ANNOTATION_CORDONED_BY, CONDITION_STACK_CONSISTENT, Mode

from .test_fleet import BASE, a_node, behind, with_fleet

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
STATE = OperatordState()


def pool_with_laggards(good: int, bad: int) -> list[Node]:
    return [*(a_node(f"n{i}") for i in range(good)), *(behind(f"x{i}") for i in range(bad))]


def plan_for(nodes: list[Node], policy: Policy = BASE, state: OperatordState = STATE):  # type: ignore[no-untyped-def]
    return plan_fleet(check_fleet(nodes, policy), nodes, policy, state)


def test_outlier_gets_a_condition_and_consistent_nodes_get_none() -> None:
    plan = plan_for(pool_with_laggards(4, 1))
    (action,) = plan.actions
    assert isinstance(action, SetStackCondition)
    assert (action.node, action.consistent, action.reason) == ("x0", False, "version_skew")
    assert action.message == "driver 535.104.05 (pool: 545.23.08, majority)"


def test_no_write_when_the_recorded_verdict_is_current() -> None:
    nodes = pool_with_laggards(4, 1)
    message = "driver 535.104.05 (pool: 545.23.08, majority)"
    nodes[-1] = replace(
        nodes[-1], conditions=(NodeCondition(CONDITION_STACK_CONSISTENT, "False", "VersionSkew", message),)
    )
    assert plan_for(nodes).is_empty


def test_recovered_node_gets_its_condition_back_to_true() -> None:
    nodes = pool_with_laggards(4, 0)
    nodes[0] = replace(
        nodes[0], conditions=(NodeCondition(CONDITION_STACK_CONSISTENT, "False", "VersionSkew", "old"),)
    )
    (action,) = plan_for(nodes).actions
    assert isinstance(action, SetStackCondition)
    assert action.consistent
    assert action.reason == "node_recovered"


def test_no_cordon_unless_the_policy_asks() -> None:
    assert plan_for(pool_with_laggards(4, 1)).actions_of(Cordon) == ()


def test_cordon_outliers_when_asked() -> None:
    policy = with_fleet(cordon_outliers=True)
    (cordon,) = plan_for(pool_with_laggards(9, 1), policy).actions_of(Cordon)
    assert (cordon.node, cordon.reason, cordon.owner) == ("x0", "version_skew", "operatord")
    assert cordon.min_mode == Mode.CORDON_ONLY


def test_a_bad_rollout_never_cordons_more_than_the_unhealthy_share() -> None:
    policy = with_fleet(cordon_outliers=True, pinned={"local-a100": {"driver": "550.54.15"}})
    nodes = pool_with_laggards(0, 10)  # every node behind the pinned target
    plan = plan_for(nodes, policy)
    assert len(plan.actions_of(Cordon)) == 2  # 20 % of 10
    assert {h.reason for h in plan.holds} == {"fleet_sick"}
    assert len(plan.holds) == 8


def test_pause_and_breaker_hold_cordons_but_not_conditions() -> None:
    policy = with_fleet(cordon_outliers=True)
    nodes = pool_with_laggards(9, 1)
    for state, reason in (
        (OperatordState(pause=Pause("maintenance", "human:ana", NOW)), "paused"),
        (OperatordState(breaker=Breaker(open=True, since=NOW)), "breaker_open"),
    ):
        plan = plan_for(nodes, policy, state)
        assert plan.actions_of(Cordon) == ()
        assert [h.reason for h in plan.holds] == [reason]
        assert len(plan.actions_of(SetStackCondition)) == 1


def test_skew_cordon_is_held_until_the_stack_is_consistent() -> None:
    owner = CordonOwner("operatord", "version_skew", NOW)
    cordoned = replace(
        behind("x0"),
        unschedulable=True,
        annotations=frozen_map(owner.annotations()),
        conditions=(NodeCondition(CONDITION_STACK_CONSISTENT, "False", "VersionSkew", "driver"),),
    )
    assert holds_cordon(cordoned)
    fixed = replace(
        cordoned, conditions=(NodeCondition(CONDITION_STACK_CONSISTENT, "True", "VersionsConsistent"),)
    )
    assert not holds_cordon(fixed)
    human = replace(
        cordoned,
        annotations=frozen_map(
            {ANNOTATION_CORDONED_BY: "human:ana", ANNOTATION_CORDON_REASON: "version_skew"}
        ),
    )
    assert not holds_cordon(human)


def test_apply_writes_condition_and_one_event_then_nothing() -> None:
    cluster = FakeClusterApi()
    nodes = pool_with_laggards(4, 1)
    for node in nodes:
        cluster.add_node(node)
    ctx = ApplyContext(
        cluster=cluster, namespace="operatord", policy=BASE, mode=Mode.OBSERVE, clock=lambda: NOW
    )
    outcomes = apply_plan(plan_for(nodes), ctx)
    assert [o.status for o in outcomes] == ["applied"]
    written = cluster.get_node("x0").condition(CONDITION_STACK_CONSISTENT)
    assert written is not None
    assert (written.status, written.reason) == ("False", "VersionSkew")
    assert [(e.name, e.reason, e.type) for e in cluster.events] == [("x0", "version_skew", "Warning")]
    assert cluster.events[0].message.endswith("(runbooks/version_skew.md)")
    again = [cluster.get_node(n.name) for n in nodes]
    assert plan_for(again).is_empty


def test_burst_pool_outliers_are_cordoned_without_the_switch() -> None:
    nodes = [
        *(a_node(f"b{i}", pool="burst-p4d") for i in range(4)),
        replace(behind("bx"), labels=frozen_map({**behind("bx").labels, "operatord.io/pool": "burst-p4d"})),
    ]
    (cordon,) = plan_for(nodes).actions_of(Cordon)
    assert (cordon.node, cordon.reason) == ("bx", "version_skew")


def test_stack_consistent_reads_the_recorded_verdict() -> None:
    from operatord.core.fleet import stack_consistent

    node = a_node("n")
    assert stack_consistent(node)
    skewed = replace(
        node, conditions=(NodeCondition(CONDITION_STACK_CONSISTENT, "False", "VersionSkew", "x"),)
    )
    assert not stack_consistent(skewed)
