"""Pure. Blast-radius guards of automatic remediation (research/faults.md §1.7, §5).

Each guard is a small total function of values from the snapshot and the policy, so it is
table-tested alone and composed by operatord.core.remediation. Many "bad" nodes at once
usually mean a shared cause (driver rollout, fabric, a job crash), and draining them all is
the outage; these functions are what stop an automatic drainer from becoming it.

Thresholds use "more than the share, and never for a single node": `count > max(1,
floor(total × fraction))`. NVSentinel's breaker trips above 50 %; Karpenter stops repair above
20 % unhealthy; on small pools one unhealthy node must still be repairable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from operatord.core.health import HealthState
from operatord.core.history import History
from operatord.core.model import OPERATORD_OWNER
from operatord.core.nodes import NodeView
from operatord.policies.model import Escalation
from operatord.policies.types import CountOrPercent

CORDON_EVENT = "cordoned"
DRAIN_EVENT = "drain_started"
NOT_SERVING = frozenset(
    {HealthState.DRAINING, HealthState.DRAINED, HealthState.AWAITING_REPAIR, HealthState.RECOVERING}
)


def share_limit(total: int, fraction: float) -> int:
    """The most items that may be affected before a share guard trips (at least 1)."""
    return max(1, math.floor(total * fraction + 1e-9))


def exceeds_share(count: int, total: int, fraction: float) -> bool:
    return total > 0 and count > share_limit(total, fraction)


def fleet_sick(views: Iterable[NodeView], max_unhealthy_fraction: float) -> tuple[bool, int, int]:
    """(sick, unhealthy, total) for one pool: more unhealthy nodes than the share → stop and page."""
    items = list(views)
    unhealthy = sum(1 for v in items if v.unhealthy)
    return exceeds_share(unhealthy, len(items), max_unhealthy_fraction), unhealthy, len(items)


def recent_cordons(
    histories: Iterable[History], *, window: timedelta, counts_from: datetime | None, now: datetime
) -> int:
    """Nodes operatord cordoned inside the breaker window (and after the last breaker reset)."""
    start = now - window
    if counts_from is not None and counts_from > start:
        start = counts_from
    return sum(
        1
        for h in histories
        if any(
            e.event == CORDON_EVENT and e.actor == OPERATORD_OWNER and start <= e.at <= now for e in h.entries
        )
    )


def explained_cordons(
    views: Iterable[NodeView], *, window: timedelta, counts_from: datetime | None, now: datetime
) -> tuple[str, ...]:
    """Nodes operatord cordoned inside the breaker window for a fault class that a fleet event now
    explains: the per-node model was wrong for them (a shared cause, such as a bad driver rollout,
    looked like single bad nodes until enough of them showed it). Names sorted."""
    start = now - window
    if counts_from is not None and counts_from > start:
        start = counts_from
    out = []
    for v in views:
        if not v.fleet_faults:
            continue
        classes = {f.class_.value for f in v.fleet_faults}
        if any(
            e.event == CORDON_EVENT
            and e.actor == OPERATORD_OWNER
            and e.reason in classes
            and start <= e.at <= now
            for e in v.history.entries
        ):
            out.append(v.name)
    return tuple(sorted(out))


def breaker_trips(recent: int, planned: int, node_count: int, fraction: float) -> bool:
    """True when this tick's cordons would take the window's quarantined share over the breaker."""
    return planned > 0 and exceeds_share(recent + planned, node_count, fraction)


def drain_budget(pool_size: int, max_concurrent: CountOrPercent) -> int:
    return max_concurrent.of(pool_size)


def draining(views: Iterable[NodeView]) -> int:
    return sum(1 for v in views if v.history.state == HealthState.DRAINING)


def last_drain_start(histories: Iterable[History]) -> datetime | None:
    starts = [e.at for h in histories for e in h.entries if e.event == DRAIN_EVENT]
    return max(starts) if starts else None


def spacing_wait(last_start: datetime | None, spacing: timedelta, now: datetime) -> timedelta:
    """How long until the next drain may start (zero when it may start now)."""
    if last_start is None:
        return timedelta(0)
    return max(timedelta(0), last_start + spacing - now)


def serving_gpus(views: Iterable[NodeView]) -> int:
    """GPUs still serving: Ready nodes not drained (a cordon keeps pods running) without a fatal fault."""
    return sum(
        v.node.gpus for v in views if v.node.ready and v.history.state not in NOT_SERVING and not v.fatal
    )


def gpu_loss(view: NodeView) -> int:
    """GPUs a drain of this node takes out of service (none when they already serve nothing)."""
    if not view.node.ready or view.fatal or view.history.state in NOT_SERVING:
        return 0
    return view.node.gpus


def keeps_min_healthy(serving: int, loss: int, total: int, fraction: float) -> bool:
    """True when `serving - loss` GPUs are still at least `fraction` of `total` (or nothing is lost)."""
    if loss <= 0 or total <= 0:
        return True
    return serving - loss >= fraction * total - 1e-9


def escalated(history: History, escalation: Escalation, now: datetime) -> bool:
    """N remediations (drains) of one node inside the window: hand it to a human (NVSentinel: 5 in 7 d)."""
    return history.count(DRAIN_EVENT, now - escalation.window) >= escalation.after_remediations
