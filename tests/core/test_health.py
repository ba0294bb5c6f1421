"""The health transition table: every edge reachable, unlisted edges rejected, human uncordon from anywhere."""

from __future__ import annotations

import pytest

from operatord.core.health import TRANSITIONS, HealthState, InvalidTransition, NodeEvent, transition

S, E = HealthState, NodeEvent


@pytest.mark.parametrize(("edge", "target"), sorted(TRANSITIONS.items()), ids=str)
def test_every_edge(edge: tuple[HealthState, NodeEvent], target: HealthState) -> None:
    assert transition(*edge) == target


def test_the_remediation_path_is_connected() -> None:
    path = [
        E.FAULT_SEEN,
        E.FAULT_CONFIRMED,
        E.DRAIN_STARTED,
        E.DRAIN_COMPLETED,
        E.HANDED_OFF,
        E.FAULT_CLEARED,
        E.UNCORDONED,
    ]
    state = S.HEALTHY
    seen = [state]
    for event in path:
        state = transition(state, event)
        seen.append(state)
    assert seen == [
        S.HEALTHY,
        S.SUSPECT,
        S.CORDONED,
        S.DRAINING,
        S.DRAINED,
        S.AWAITING_REPAIR,
        S.RECOVERING,
        S.HEALTHY,
    ]


@pytest.mark.parametrize(
    ("state", "event"),
    [
        pytest.param(S.HEALTHY, E.DRAIN_STARTED, id="no-drain-without-cordon"),
        pytest.param(S.AWAITING_REPAIR, E.UNCORDONED, id="no-uncordon-before-recovery"),
        pytest.param(S.DRAINED, E.DRAIN_STARTED, id="no-second-drain-of-a-drained-node"),
        pytest.param(S.SUSPECT, E.DRAIN_STARTED, id="suspect-is-not-drained"),
    ],
)
def test_unlisted_edges_are_rejected(state: HealthState, event: NodeEvent) -> None:
    with pytest.raises(InvalidTransition):
        transition(state, event)


@pytest.mark.parametrize("state", list(HealthState))
def test_a_human_uncordon_wins_from_any_state(state: HealthState) -> None:
    assert transition(state, E.HUMAN_UNCORDONED) == S.HEALTHY
