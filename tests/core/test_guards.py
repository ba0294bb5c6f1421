"""Every guard alone, as tables: thresholds, rounding on small pools, windows and resets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from operatord.core import guards
from operatord.core.health import HealthState
from operatord.core.history import History
from operatord.core.nodes import Fault, NodeView
from operatord.policies.model import Escalation
from operatord.policies.types import parse_count_or_percent

from .conftest import NOW, a_finding, a_node, entry, minutes


@pytest.mark.parametrize(
    ("count", "total", "fraction", "tripped"),
    [
        pytest.param(1, 1, 0.5, False, id="one-node-never-trips"),
        pytest.param(1, 2, 0.5, False, id="half-is-not-more-than-half"),
        pytest.param(2, 2, 0.5, True, id="all-of-two-trips"),
        pytest.param(5, 10, 0.5, False, id="exactly-half-of-ten-holds"),
        pytest.param(6, 10, 0.5, True, id="more-than-half-of-ten-trips"),
        pytest.param(2, 4, 0.2, True, id="two-of-four-at-20-percent"),
        pytest.param(1, 4, 0.2, False, id="one-of-four-is-repairable"),
        pytest.param(3, 10, 0.2, True, id="three-of-ten-at-20-percent"),
        pytest.param(0, 0, 0.2, False, id="empty-pool"),
    ],
)
def test_exceeds_share(count: int, total: int, fraction: float, tripped: bool) -> None:
    assert guards.exceeds_share(count, total, fraction) is tripped


def _view(
    name: str,
    *,
    ready: bool = True,
    faulty: bool = False,
    state: HealthState = HealthState.HEALTHY,
    gpus: int = 8,
) -> NodeView:
    node = a_node(name, ready=ready, gpus=gpus)
    faults = ()
    if faulty:
        f = a_finding()
        faults = (Fault(f.class_, True, True, NOW, NOW, f.rule),)
    history = History((entry("x", state),)) if state != HealthState.HEALTHY else History()
    return NodeView(node, "local-a100", history, faults)


@pytest.mark.parametrize(
    ("views", "sick"),
    [
        pytest.param([_view(f"n{i}") for i in range(10)], False, id="all-healthy"),
        pytest.param(
            [_view("a", faulty=True), *[_view(f"n{i}") for i in range(9)]], False, id="one-sick-of-ten"
        ),
        pytest.param(
            [_view("a", faulty=True), _view("b", ready=False), *[_view(f"n{i}") for i in range(8)]],
            False,
            id="two-of-ten-at-limit",
        ),
        pytest.param(
            [_view(x, faulty=True) for x in "abc"] + [_view(f"n{i}") for i in range(7)],
            True,
            id="three-of-ten-sick",
        ),
        pytest.param(
            [_view("a", ready=False), _view("b", ready=False), _view("c"), _view("d")],
            True,
            id="not-ready-counts",
        ),
    ],
)
def test_fleet_sick(views: list[NodeView], sick: bool) -> None:
    assert guards.fleet_sick(views, 0.2)[0] is sick


def test_recent_cordons_window_actor_and_reset() -> None:
    histories = [
        History((entry("cordoned", HealthState.CORDONED, ago=minutes(1)),)),
        History((entry("cordoned", HealthState.CORDONED, ago=minutes(10)),)),  # outside 5m
        History((entry("cordoned", None, ago=minutes(1), actor="human:bob"),)),  # not ours
        History((entry("cordoned", HealthState.CORDONED, ago=minutes(3)),)),
    ]
    assert guards.recent_cordons(histories, window=minutes(5), counts_from=None, now=NOW) == 2
    assert guards.recent_cordons(histories, window=minutes(5), counts_from=NOW - minutes(2), now=NOW) == 1


@pytest.mark.parametrize(
    ("recent", "planned", "nodes", "trips"),
    [
        pytest.param(0, 0, 10, False, id="nothing-planned"),
        pytest.param(4, 1, 10, False, id="up-to-half"),
        pytest.param(5, 1, 10, True, id="over-half-trips"),
        pytest.param(0, 6, 10, True, id="mass-arrival-trips-at-once"),
    ],
)
def test_breaker_trips(recent: int, planned: int, nodes: int, trips: bool) -> None:
    assert guards.breaker_trips(recent, planned, nodes, 0.5) is trips


@pytest.mark.parametrize(
    ("budget", "pool", "allowed"),
    [
        pytest.param("1", 10, 1, id="count"),
        pytest.param("10%", 40, 4, id="percent"),
        pytest.param("10%", 4, 1, id="percent-rounds-up-to-one-on-small-pools"),
        pytest.param("0", 10, 0, id="zero-disables"),
    ],
)
def test_drain_budget(budget: str, pool: int, allowed: int) -> None:
    assert guards.drain_budget(pool, parse_count_or_percent(budget)) == allowed


@pytest.mark.parametrize(
    ("ago", "wait"),
    [
        pytest.param(None, timedelta(0), id="first-drain"),
        pytest.param(minutes(3), minutes(7), id="inside-spacing"),
        pytest.param(minutes(10), timedelta(0), id="exactly-spaced"),
    ],
)
def test_spacing_wait(ago: timedelta | None, wait: timedelta) -> None:
    last = None if ago is None else NOW - ago
    assert guards.spacing_wait(last, minutes(10), NOW) == wait


def test_serving_gpus_counts_cordoned_but_not_drained_or_fatal() -> None:
    views = [
        _view("a"),
        _view("b", state=HealthState.CORDONED),  # still serving
        _view("c", state=HealthState.DRAINED),
        _view("d", faulty=True),  # fatal fault: serves nothing
        _view("e", ready=False),
    ]
    assert guards.serving_gpus(views) == 16
    assert guards.gpu_loss(views[1]) == 8
    assert guards.gpu_loss(views[3]) == 0


@pytest.mark.parametrize(
    ("serving", "loss", "total", "ok"),
    [
        pytest.param(80, 8, 80, True, id="plenty"),
        pytest.param(64, 8, 80, False, id="would-drop-below-75-percent"),
        pytest.param(68, 8, 80, True, id="lands-on-75-percent"),
        pytest.param(10, 0, 80, True, id="fatal-node-loses-nothing"),
    ],
)
def test_keeps_min_healthy(serving: int, loss: int, total: int, ok: bool) -> None:
    assert guards.keeps_min_healthy(serving, loss, total, 0.75) is ok


def test_escalation_counts_drains_in_window() -> None:
    esc = Escalation(after_remediations=2, window=timedelta(days=7))
    two = History(
        (
            entry("drain_started", HealthState.DRAINING, ago=timedelta(days=1)),
            entry("drain_started", HealthState.DRAINING, ago=timedelta(days=2)),
        )
    )
    old = History(
        (
            entry("drain_started", HealthState.DRAINING, ago=timedelta(days=1)),
            entry("drain_started", HealthState.DRAINING, ago=timedelta(days=9)),
        )
    )
    assert guards.escalated(two, esc, NOW)
    assert not guards.escalated(old, esc, NOW)
