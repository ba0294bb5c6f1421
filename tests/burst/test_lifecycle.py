"""The burst lifecycle table, deadlines, the intent record's JSON form, and reconcile's per-intent
rules (expiry, drain, terminate retry, multi-node group rollback)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operatord.core.burst.intent import (
    Attempt,
    AttemptOutcome,
    InstanceRecord,
    Intent,
    Offering,
    client_token,
    from_json,
    to_json,
)
from operatord.core.burst.lifecycle import (
    TRANSITIONS,
    BurstState,
    IllegalTransition,
    check_transition,
    deadline,
)
from operatord.core.burst.observed import CloudInstance, NodeView
from operatord.core.burst.reconcile import collectable, find_orphans, reconcile_intent

from .conftest import NOW, a_policy, multinode_policy

ALL_EDGES = [(s, t) for s, targets in TRANSITIONS.items() for t in targets]
NON_EDGES = [(s, t) for s in BurstState for t in BurstState if t not in TRANSITIONS[s]]


@pytest.mark.parametrize(("source", "target"), ALL_EDGES, ids=[f"{s}->{t}" for s, t in ALL_EDGES])
def test_every_listed_edge_is_allowed(source: BurstState, target: BurstState) -> None:
    check_transition(source, target)


@pytest.mark.parametrize(("source", "target"), NON_EDGES, ids=[f"{s}-x->{t}" for s, t in NON_EDGES])
def test_every_unlisted_edge_is_rejected(source: BurstState, target: BurstState) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(source, target)


def test_terminal_states_have_no_way_out_and_every_state_can_reach_terminated() -> None:
    assert {s for s in BurstState if s.terminal} == {BurstState.TERMINATED, BurstState.LAUNCH_FAILED}
    for state in BurstState:
        seen, todo = {state}, [state]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        assert seen & {BurstState.TERMINATED, BurstState.LAUNCH_FAILED}, state


def test_every_transient_state_has_a_deadline() -> None:
    policy = a_policy().burst
    assert policy is not None
    lasting = {
        BurstState.SERVING,
        BurstState.TERMINATED,
        BurstState.LAUNCH_FAILED,
        BurstState.TERMINATE_FAILED,
    }
    for state in BurstState:
        due = deadline(state, requested_at=NOW, state_since=NOW, policy=policy)
        assert (due is None) == (state in lasting), state
    # Boot deadlines count from the request, not from entering the state.
    assert deadline(
        BurstState.RUNNING, requested_at=NOW, state_since=NOW + timedelta(minutes=9), policy=policy
    ) == NOW + timedelta(minutes=15)


def test_client_token_is_48_hex_and_distinct_per_attempt_and_offering() -> None:
    tokens = {
        client_token("abc", n, t, s)
        for n in (1, 2)
        for t in ("p4d.24xlarge", "p5.48xlarge")
        for s in ("subnet-1", "subnet-2")
    }
    assert len(tokens) == 8
    assert all(len(t) == 48 and int(t, 16) >= 0 for t in tokens)
    assert client_token("abc", 1, "p4d.24xlarge", "subnet-1") == client_token(
        "abc", 1, "p4d.24xlarge", "subnet-1"
    )


def an_intent(
    n: int = 1,
    state: BurstState = BurstState.RUNNING,
    launched_ago: timedelta = timedelta(minutes=1),
    expires_in: timedelta = timedelta(hours=24),
) -> Intent:
    at = NOW - launched_ago
    attempt = Attempt(
        1,
        Offering("p4d.24xlarge", "subnet-0a1b2c3d4e5f60001", "us-east-1a"),
        n,
        client_token("x1", 1, "p4d.24xlarge", "subnet-0a1b2c3d4e5f60001"),
        at,
        AttemptOutcome.LAUNCHED,
        None,
        at,
    )
    recs = tuple(
        InstanceRecord(f"i-{k:017x}", "p4d.24xlarge", "us-east-1a", 21.957642, at, state, at, attempt=1)
        for k in range(1, n + 1)
    )
    return Intent(
        "x1",
        "test",
        "burst",
        "llama-70b",
        1,
        ("p4d.24xlarge",),
        "demand_over_supply",
        at,
        NOW + expires_in,
        BurstState.RUNNING,
        at,
        (attempt,),
        recs,
    )


def cloud_of(intent: Intent, state: str = "running") -> list[CloudInstance]:
    return [
        CloudInstance(r.instance_id, r.instance_type, r.availability_zone, state, r.launched_at, intent.id)
        for r in intent.instances
    ]


@given(st.integers(1, 3), st.integers(0, 10_000))
def test_intent_json_round_trips(n: int, minutes: int) -> None:
    intent = an_intent(n, launched_ago=timedelta(minutes=minutes))
    intent = intent.instance_moved(
        intent.instances[0].instance_id, BurstState.REGISTERED, NOW, "observed", node="n1"
    )
    assert from_json(to_json(intent)) == intent


def test_reconcile_expired_serving_instance_is_drained_then_terminated() -> None:
    policy = a_policy()
    intent = an_intent(state=BurstState.SERVING, launched_ago=timedelta(hours=25), expires_in=timedelta(0))
    iid = intent.instances[0].instance_id
    node = {iid: NodeView("n1", iid, True, 8, 1)}
    step = reconcile_intent(intent, cloud_of(intent), node, policy, NOW)
    assert step.intent.instances[0].state is BurstState.DRAINING
    assert step.intent.history[-1].reason == "instance_expired"
    assert step.terminate == ()
    step = reconcile_intent(step.intent, cloud_of(intent), node, policy, NOW + timedelta(minutes=11))
    assert step.intent.instances[0].state is BurstState.TERMINATING
    assert step.intent.history[-1].reason == "drain_timeout"
    assert step.terminate == (iid,)
    assert step.delete_nodes == ("n1",)


def test_terminate_is_reissued_and_a_stuck_one_is_marked_failed_then_retried() -> None:
    policy = a_policy()
    intent = an_intent(state=BurstState.TERMINATING)
    step = reconcile_intent(intent, cloud_of(intent), {}, policy, NOW)
    assert step.terminate == (intent.instances[0].instance_id,)  # idempotent: ask again each reconcile
    late = reconcile_intent(intent, cloud_of(intent), {}, policy, NOW + timedelta(minutes=12))
    assert late.intent.instances[0].state is BurstState.TERMINATE_FAILED
    again = reconcile_intent(late.intent, cloud_of(intent), {}, policy, NOW + timedelta(minutes=13))
    assert again.intent.instances[0].state is BurstState.TERMINATING
    done = reconcile_intent(
        again.intent, cloud_of(intent, "terminated"), {}, policy, NOW + timedelta(minutes=14)
    )
    assert done.intent.instances[0].state is BurstState.TERMINATED
    assert not done.intent.live


def test_a_multinode_group_that_loses_a_booting_node_is_rolled_back_whole() -> None:
    policy = multinode_policy()
    intent = an_intent(n=2)
    a, b = (r.instance_id for r in intent.instances)
    cloud = [c for c in cloud_of(intent) if c.instance_id == a] + [
        CloudInstance(b, "p4d.24xlarge", "us-east-1a", "terminated", NOW, intent.id)
    ]
    step = reconcile_intent(intent, cloud, {}, policy, NOW)
    states = {r.instance_id: r.state for r in step.intent.instances}
    assert states == {a: BurstState.TERMINATING, b: BurstState.TERMINATED}
    assert step.terminate == (a,)


def test_recently_launched_instance_missing_from_listing_is_not_gone_yet() -> None:
    policy = a_policy()
    intent = an_intent(launched_ago=timedelta(seconds=30))
    step = reconcile_intent(intent, [], {}, policy, NOW)
    assert step.intent.instances[0].state is BurstState.RUNNING  # eventual consistency: wait
    later = reconcile_intent(an_intent(launched_ago=timedelta(minutes=6)), [], {}, policy, NOW)
    assert later.intent.instances[0].state is BurstState.TERMINATED


def test_orphans_include_expired_untracked_and_skip_open_attempts() -> None:
    policy = a_policy(orphan_grace="10m")
    young = CloudInstance(
        "i-young", "p4d.24xlarge", "us-east-1a", "running", NOW - timedelta(minutes=2), "zz"
    )
    expired = CloudInstance(
        "i-exp",
        "p4d.24xlarge",
        "us-east-1a",
        "running",
        NOW - timedelta(minutes=2),
        "zz",
        expires_at=NOW - timedelta(seconds=1),
    )
    old = CloudInstance("i-old", "p4d.24xlarge", "us-east-1a", "running", NOW - timedelta(minutes=11), None)
    tracked = an_intent()
    mine = cloud_of(tracked)[0]
    found = find_orphans([tracked], [young, expired, old, mine], policy, NOW)
    assert [(o.instance_id, o.reason.value) for o in found] == [
        ("i-exp", "instance_expired"),
        ("i-old", "orphan_instance"),
    ]


def test_finished_intents_are_kept_48h_for_spend_accounting() -> None:
    intent = an_intent()
    iid = intent.instances[0].instance_id
    done = intent.instance_moved(iid, BurstState.TERMINATING, NOW, "x").instance_moved(
        iid, BurstState.TERMINATED, NOW, "x"
    )
    assert not collectable(done, NOW + timedelta(hours=47))
    assert collectable(done, NOW + timedelta(hours=48))
    assert not collectable(intent, NOW + timedelta(days=10))  # live: never


def test_a_serving_instance_whose_node_was_deleted_is_finished_as_node_lost() -> None:
    policy = a_policy()
    intent = an_intent(state=BurstState.SERVING, launched_ago=timedelta(hours=1))
    iid = intent.instances[0].instance_id
    step = reconcile_intent(intent, cloud_of(intent), {}, policy, NOW)
    assert step.intent.instances[0].state is BurstState.DRAINING
    assert step.intent.history[-1].reason == "node_lost"
    done = reconcile_intent(step.intent, cloud_of(intent), {}, policy, NOW + timedelta(seconds=30))
    assert done.terminate == (iid,)
    assert done.intent.history[-1].reason == "node_lost"  # the exit keeps the reason it started with


def test_a_stopped_instance_is_terminated_and_the_reason_carries_to_terminated() -> None:
    policy = a_policy()
    intent = an_intent(state=BurstState.SERVING, launched_ago=timedelta(hours=1))
    iid = intent.instances[0].instance_id
    node = {iid: NodeView("n1", iid, False, 8, 0)}
    step = reconcile_intent(intent, cloud_of(intent, "stopped"), node, policy, NOW)
    assert (step.terminate, step.delete_nodes) == ((iid,), ("n1",))
    assert step.intent.history[-1].reason == "node_lost"
    gone = reconcile_intent(
        step.intent, cloud_of(intent, "terminated"), {}, policy, NOW + timedelta(minutes=1)
    )
    assert gone.intent.instances[0].state is BurstState.TERMINATED
    assert gone.intent.history[-1].reason == "node_lost"


def test_a_finished_drain_terminates_for_the_reason_it_started() -> None:
    policy = a_policy()
    intent = an_intent(state=BurstState.SERVING, launched_ago=timedelta(hours=1))
    iid = intent.instances[0].instance_id
    draining = intent.instance_moved(iid, BurstState.DRAINING, NOW, "supply_over_demand")
    step = reconcile_intent(draining, cloud_of(intent), {iid: NodeView("n1", iid, True, 8, 0)}, policy, NOW)
    assert step.terminate == (iid,)
    assert step.intent.history[-1].reason == "supply_over_demand"


def test_a_burst_node_with_a_skewed_stack_never_serves_and_times_out() -> None:
    policy = a_policy()
    intent = an_intent(state=BurstState.RUNNING, launched_ago=timedelta(minutes=8))
    iid = intent.instances[0].instance_id
    skewed = {iid: NodeView("n1", iid, True, 8, 1, stack_consistent=False)}
    step = reconcile_intent(intent, cloud_of(intent), skewed, policy, NOW)
    assert step.intent.instances[0].state is BurstState.GPU_READY  # serving pods seen, yet not serving
    late = reconcile_intent(step.intent, cloud_of(intent), skewed, policy, NOW + timedelta(minutes=30))
    assert late.intent.instances[0].state is BurstState.TERMINATING
    assert late.intent.history[-1].reason == "serving_timeout"
    fine = {iid: NodeView("n1", iid, True, 8, 1)}
    assert (
        reconcile_intent(intent, cloud_of(intent), fine, policy, NOW).intent.instances[0].state
        is BurstState.SERVING
    )
