"""Pure. Node remediation: plan_remediation(snapshot, policy, now) -> Plan (cordon → drain → hand off).

Per node, the health state machine (operatord.core.health) and the node's active faults say
what it wants next; then the guards (operatord.core.guards) decide, in a fixed order, which of
those wants become actions and which become holds with a reason:

1. A human's cordon or uncordon always wins: a human-cordoned node is left alone; a node a
   human uncordoned is acknowledged (its current findings never re-cordon it).
2. Pause and an open breaker stop every automatic cordon, drain and uncordon.
3. A fleet event (one class on many nodes at once) is one hold, not many bad nodes.
4. A sick pool (too many unhealthy nodes) gets no automatic cordon or drain.
5. Cordons that would take the window's quarantined share over the breaker trip it instead.
6. Drains, fatal first: escalation, concurrent-drain budget, spacing (not for fatal faults),
   minimum serving GPUs per pool, and capacity: a non-fatal drain that would leave serving
   capacity below demand records a capacity request and waits for the replacement (or the
   request's timeout); a fatal fault never waits.

Application faults never reach here (operatord.core.nodes keeps node faults only).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from operatord.core import guards
from operatord.core.fleet import holds_cordon
from operatord.core.health import HealthState, NodeEvent, transition
from operatord.core.memo import Memo
from operatord.core.model import OPERATORD_OWNER
from operatord.core.nodes import NodeView, build_views, pooled_views
from operatord.core.plan import (
    Action,
    CloseCapacityRequest,
    Cordon,
    Drain,
    HandOff,
    Hold,
    Plan,
    RecordTransition,
    RequestCapacity,
    TripBreaker,
    Uncordon,
    action_key,
    detail,
)
from operatord.core.snapshot import Snapshot
from operatord.policies.model import Policy
from operatord.vocab import FaultClass, Reason

S = HealthState
_OURS = frozenset({S.CORDONED, S.DRAINING, S.DRAINED, S.AWAITING_REPAIR, S.RECOVERING})


@dataclass(frozen=True, slots=True)
class Want:
    """What a node's state and faults ask for, before the guards."""

    kind: str  # cordon | drain | resume | hand_off | uncordon
    event: NodeEvent
    reason: str


class NodeIntent(NamedTuple):
    """What one node wants this tick, before the guards."""

    view: NodeView
    records: tuple[RecordTransition, ...] = ()
    want: Want | None = None
    hold: Hold | None = None


def _reason(view: NodeView) -> str:
    primary = view.primary
    return primary.class_.value if primary is not None else Reason.NODE_RECOVERED.value


def _record(
    view: NodeView, event: NodeEvent, state: S, reason: str, now: datetime, **kw: object
) -> RecordTransition:
    to_state = transition(state, event)
    ack = kw.get("ack_before")
    return RecordTransition(
        key=action_key("record", view.name, event.value, now.isoformat()),
        reason=reason,
        node=view.name,
        event=event.value,
        to_state=to_state,
        ack_before=ack if isinstance(ack, datetime) else None,
    )


def _toleration(view: NodeView, policy: Policy) -> timedelta:
    """The shortest toleration among the node's active faults (zero when any is fatal or unlisted)."""
    if view.fatal:
        return timedelta(0)
    return min(
        (policy.remediation.toleration.get(f.class_, timedelta(0)) for f in view.faults), default=timedelta(0)
    )


def idle(view: NodeView) -> bool:
    """Schedulable, healthy by its history and without active faults: nothing to want, record or
    hold. Most nodes on most ticks; checked before anything else is built for them."""
    return not view.faults and not view.node.unschedulable and view.history.state == S.HEALTHY


def node_intent(view: NodeView, policy: Policy, now: datetime) -> NodeIntent:
    """What this node wants next, from its state, cordon owner and active faults (guards aside)."""
    if idle(view):
        return NodeIntent(view)
    node, state = view.node, view.history.state
    owner = node.cordon_owner
    if owner is not None and owner.is_human:
        return NodeIntent(view, hold=Hold(Reason.HUMAN_CORDON.value, view.name, detail(owner=owner.by)))
    if owner is None and state in _OURS:
        # We hold the node in a cordoned state but it is schedulable: a human uncordoned it.
        rec = _record(
            view, NodeEvent.HUMAN_UNCORDONED, state, Reason.HUMAN_UNCORDON.value, now, ack_before=now
        )
        return NodeIntent(view, records=(rec,), hold=Hold(Reason.HUMAN_UNCORDON.value, view.name))
    if owner is not None and owner.is_operatord and state in (S.HEALTHY, S.SUSPECT):
        state = S.CORDONED  # the cordon is the truth when its history entry was lost
    faults = view.faults
    reason = _reason(view)
    if state == S.HEALTHY:  # not idle, so it has faults: a cordoned healthy node became CORDONED above
        if _toleration(view, policy) <= timedelta(0):
            return NodeIntent(view, want=Want("cordon", NodeEvent.FAULT_CONFIRMED, reason))
        rec = _record(view, NodeEvent.FAULT_SEEN, state, reason, now)
        left = _toleration(view, policy)
        return NodeIntent(
            view,
            records=(rec,),
            hold=Hold(Reason.TOLERATING.value, view.name, detail(fault=reason, left_s=left.total_seconds())),
        )
    if state == S.SUSPECT:
        if not faults:
            return NodeIntent(
                view,
                records=(_record(view, NodeEvent.FAULT_CLEARED, state, Reason.NODE_RECOVERED.value, now),),
            )
        since = view.history.state_since or now
        left = since + _toleration(view, policy) - now
        if left <= timedelta(0):
            return NodeIntent(view, want=Want("cordon", NodeEvent.FAULT_CONFIRMED, reason))
        return NodeIntent(
            view,
            hold=Hold(Reason.TOLERATING.value, view.name, detail(fault=reason, left_s=left.total_seconds())),
        )
    if state == S.CORDONED:
        if not faults:
            return NodeIntent(view, want=Want("uncordon", NodeEvent.UNCORDONED, Reason.NODE_RECOVERED.value))
        if not view.wants_drain:
            return NodeIntent(
                view, hold=Hold(reason, view.name, detail(note="cordon-only fault: no drain"), "drain")
            )
        return NodeIntent(view, want=Want("drain", NodeEvent.DRAIN_STARTED, reason))
    if state == S.DRAINING:
        last = view.history.last(guards.DRAIN_EVENT)
        return NodeIntent(view, want=Want("resume", NodeEvent.DRAIN_STARTED, last.reason if last else reason))
    if state == S.DRAINED:
        last = view.history.last(guards.DRAIN_EVENT)
        return NodeIntent(view, want=Want("hand_off", NodeEvent.HANDED_OFF, last.reason if last else reason))
    if state == S.AWAITING_REPAIR:
        if faults:
            return NodeIntent(view, hold=Hold(Reason.AWAITING_REPAIR.value, view.name, detail(fault=reason)))
        rec = _record(view, NodeEvent.FAULT_CLEARED, state, Reason.NODE_RECOVERED.value, now)
        return NodeIntent(
            view, records=(rec,), want=Want("uncordon", NodeEvent.UNCORDONED, Reason.NODE_RECOVERED.value)
        )
    # RECOVERING
    if faults:
        return NodeIntent(view, records=(_record(view, NodeEvent.FAULT_SEEN, state, reason, now),))
    return NodeIntent(view, want=Want("uncordon", NodeEvent.UNCORDONED, Reason.NODE_RECOVERED.value))


class _Pools(NamedTuple):
    """What the guards need from this tick's views, in one pass: a function of the views alone
    (decide reuses it while the views are the same)."""

    restless: tuple[NodeView, ...]  # views that are not idle: they get a NodeIntent
    fleet_holds: tuple[Hold, ...]  # one per fleet event
    by_pool: Mapping[str, tuple[NodeView, ...]]
    sick: Mapping[str, tuple[int, int]]  # pool → (unhealthy, total) where fleet_sick trips


def _pools(views: Sequence[NodeView], policy: Policy) -> _Pools:
    fleet: dict[FaultClass, list[str]] = defaultdict(list)
    members: dict[str, list[NodeView]] = defaultdict(list)
    for v in views:
        for f in v.fleet_faults:
            fleet[f.class_].append(v.name)
        members[v.pool].append(v)
    holds = []
    for cls in sorted(fleet):
        names = sorted(set(fleet[cls]))
        holds.append(
            Hold(
                Reason.FLEET_EVENT.value,
                None,
                detail(fault=cls.value, nodes=",".join(names), count=len(names)),
            )
        )
    by_pool = {pool: tuple(vs) for pool, vs in members.items()}
    sick: dict[str, tuple[int, int]] = {}
    for pool, vs in by_pool.items():
        is_sick, unhealthy, total = guards.fleet_sick(vs, _max_unhealthy(policy, pool))
        if is_sick:
            sick[pool] = (unhealthy, total)
    restless = tuple(v for v in views if not idle(v))
    return _Pools(restless, tuple(holds), MappingProxyType(by_pool), MappingProxyType(sick))


def plan_remediation(snap: Snapshot, policy: Policy, now: datetime, memo: Memo | None = None) -> Plan:
    """This tick's remediation actions and holds; deterministic for equal inputs.

    `memo` (core.memo) reuses the pooled views and the per-pool counts while the nodes, and so the
    views, are the same objects as last tick; the plan is the same without it."""
    memo = memo if memo is not None else Memo()
    rp = policy.remediation
    nodes = snap.nodes
    pooled = memo.reuse("nodes.pooled", (nodes, policy), lambda: pooled_views(nodes, policy))
    views = build_views(nodes, policy, snap.state, now, pooled)
    pools = memo.reuse("remediation.pools", (views, policy), lambda: _pools(views, policy))
    intents = [node_intent(v, policy, now) for v in pools.restless]
    holds: list[Hold] = list(pools.fleet_holds)
    records: list[Action] = []
    for it in intents:
        records.extend(it.records)
        if it.hold is not None:
            holds.append(it.hold)
    wants = [it for it in intents if it.want is not None]

    # 1b. a fleet event that explains cordons operatord made: its own actions had a shared cause.
    trip = _fleet_event_trip(snap, policy, views, now) if pools.fleet_holds else None
    # 2. pause and breaker: no automatic cordon, drain or uncordon (hand-offs are records).
    stop = (
        Reason.PAUSED
        if snap.state.pause is not None
        else Reason.BREAKER_OPEN
        if snap.state.breaker.open or trip is not None
        else None
    )
    if stop is not None:
        for it in wants:
            assert it.want is not None
            if it.want.kind != "hand_off":
                holds.append(Hold(stop.value, it.view.name, detail(wanted=it.want.reason), it.want.kind))
        wants = [it for it in wants if it.want is not None and it.want.kind == "hand_off"]

    # 4. sick pools: no automatic cordon or drain there.
    by_pool, sick = pools.by_pool, pools.sick
    kept = []
    for it in wants:
        assert it.want is not None
        if it.view.pool in sick and it.want.kind in ("cordon", "drain"):
            unhealthy, total = sick[it.view.pool]
            holds.append(
                Hold(
                    Reason.FLEET_SICK.value,
                    it.view.name,
                    detail(pool=it.view.pool, unhealthy=unhealthy, nodes=total),
                    it.want.kind,
                )
            )
        else:
            kept.append(it)
    wants = kept

    actions: list[Action] = [trip] if trip is not None else []
    # 5. cordons, or the breaker.
    cordons = [it for it in wants if it.want is not None and it.want.kind == "cordon"]
    breaker_tripped = False
    if cordons:
        recent = guards.recent_cordons(
            (v.history for v in views),
            window=rp.breaker.window,
            counts_from=snap.state.breaker.counts_from,
            now=now,
        )
        if guards.breaker_trips(recent, len(cordons), len(views), rp.breaker.fraction):
            breaker_tripped = True
            actions.append(
                TripBreaker(
                    key=action_key("trip_breaker", now.isoformat()),
                    reason=Reason.BREAKER_OPEN.value,
                    since=now,
                    detail=detail(
                        recent=recent, wanted=len(cordons), nodes=len(views), fraction=rp.breaker.fraction
                    ),
                )
            )
            for it in cordons:
                assert it.want is not None
                holds.append(
                    Hold(Reason.BREAKER_OPEN.value, it.view.name, detail(wanted=it.want.reason), "cordon")
                )
        else:
            for it in cordons:
                assert it.want is not None
                first = it.view.primary.first_seen.isoformat() if it.view.primary else ""
                actions.append(
                    Cordon(
                        key=action_key("cordon", it.view.name, first),
                        reason=it.want.reason,
                        node=it.view.name,
                        owner=OPERATORD_OWNER,
                        to_state=transition(_state_for(it.view), it.want.event),
                        detail=detail(fatal=it.view.fatal),
                    )
                )

    # 6. drains.
    drain_actions, drain_holds, capacity = _plan_drains(
        snap, policy, views, by_pool, wants, now, breaker_tripped
    )
    actions.extend(capacity)
    actions.extend(drain_actions)
    holds.extend(drain_holds)

    for it in wants:
        assert it.want is not None
        if it.want.kind == "hand_off":
            actions.append(
                HandOff(
                    key=action_key("hand_off", it.view.name, it.view.history.state_since or ""),
                    reason=Reason.AWAITING_REPAIR.value,
                    node=it.view.name,
                    fault=it.want.reason,
                    runbook=f"runbooks/{it.want.reason}.md",
                )
            )
        elif it.want.kind == "uncordon":
            if guards.escalated(it.view.history, rp.escalation, now):
                holds.append(
                    Hold(
                        Reason.ESCALATED.value,
                        it.view.name,
                        detail(note="a human returns this node"),
                        "uncordon",
                    )
                )
            elif holds_cordon(it.view.node):
                holds.append(
                    Hold(
                        Reason.VERSION_SKEW.value,
                        it.view.name,
                        detail(note="cordoned for version skew; its stack still differs from the pool"),
                        "uncordon",
                    )
                )
            elif not rp.uncordon_on_recovery:
                holds.append(
                    Hold(
                        Reason.NODE_RECOVERED.value,
                        it.view.name,
                        detail(note="uncordon_on_recovery is off"),
                        "uncordon",
                    )
                )
            else:
                actions.append(
                    Uncordon(
                        key=action_key("uncordon", it.view.name, it.view.node.resource_version),
                        reason=Reason.NODE_RECOVERED.value,
                        node=it.view.name,
                        actor=OPERATORD_OWNER,
                    )
                )
    return Plan(tuple(records) + tuple(actions), tuple(holds))


def _fleet_event_trip(
    snap: Snapshot, policy: Policy, views: Sequence[NodeView], now: datetime
) -> TripBreaker | None:
    """Trip the breaker when a fleet event explains nodes operatord cordoned in the breaker window.

    The correlation needs `fleet_event_nodes` nodes to see a shared cause, so the first nodes of a
    bad rollout are cordoned (and one may start draining) as single bad nodes. Once the fleet event
    explains them, operatord's own recent actions are suspect: stop every automatic cordon, drain
    and uncordon and page, rather than keep draining or uncordon on a guess."""
    if snap.state.breaker.open:
        return None
    breaker = policy.remediation.breaker
    explained = guards.explained_cordons(
        views, window=breaker.window, counts_from=snap.state.breaker.counts_from, now=now
    )
    if not explained:
        return None
    classes = sorted({f.class_.value for v in views if v.name in explained for f in v.fleet_faults})
    return TripBreaker(
        key=action_key("trip_breaker", now.isoformat()),
        reason=Reason.BREAKER_OPEN.value,
        since=now,
        detail=detail(fleet_event=",".join(classes), cordoned=",".join(explained), count=len(explained)),
    )


def _state_for(view: NodeView) -> S:
    owner = view.node.cordon_owner
    state = view.history.state
    if owner is not None and owner.is_operatord and state in (S.HEALTHY, S.SUSPECT):
        return S.CORDONED
    return state


def _min_healthy(policy: Policy, pool: str) -> float:
    p = policy.pool(pool)
    if p is not None and p.min_healthy_gpu_fraction is not None:
        return p.min_healthy_gpu_fraction
    return policy.remediation.min_healthy_gpu_fraction


def _max_unhealthy(policy: Policy, pool: str) -> float:
    p = policy.pool(pool)
    if p is not None and p.max_unhealthy_fraction is not None:
        return p.max_unhealthy_fraction
    return policy.remediation.max_unhealthy_fraction


def _drain_order(it: NodeIntent) -> tuple[object, ...]:
    assert it.want is not None
    primary = it.view.primary
    return (
        it.want.kind != "resume",
        not it.view.fatal,
        primary.first_seen if primary else datetime.max,
        it.view.name,
    )


def _plan_drains(
    snap: Snapshot,
    policy: Policy,
    views: tuple[NodeView, ...],
    by_pool: Mapping[str, Sequence[NodeView]],
    intents: list[NodeIntent],
    now: datetime,
    breaker_tripped: bool,
) -> tuple[list[Action], list[Hold], list[Action]]:
    rp = policy.remediation
    drains = sorted(
        (it for it in intents if it.want is not None and it.want.kind in ("drain", "resume")),
        key=_drain_order,
    )
    if not drains:
        return [], [], _close_stale_requests(snap, set(), [])
    actions: list[Action] = []
    holds: list[Hold] = []
    capacity: list[Action] = []
    serving = {pool: guards.serving_gpus(members) for pool, members in by_pool.items()}
    totals = {pool: sum(v.node.gpus for v in members) for pool, members in by_pool.items()}
    in_progress = {pool: guards.draining(members) for pool, members in by_pool.items()}
    started: dict[str, int] = defaultdict(int)
    lost: dict[str, int] = defaultdict(int)
    all_serving = sum(serving.values()) - _burst_gpus_not_serving_yet(snap, policy, views)
    last_start = guards.last_drain_start(v.history for v in views)
    waiting: set[str] = set()
    for it in drains:
        assert it.want is not None
        view, want, pool = it.view, it.want, it.view.pool
        if breaker_tripped:
            holds.append(Hold(Reason.BREAKER_OPEN.value, view.name, detail(wanted=want.reason), "drain"))
            continue
        if want.kind == "drain":
            if guards.escalated(view.history, rp.escalation, now):
                count = view.history.count(guards.DRAIN_EVENT, now - rp.escalation.window)
                holds.append(Hold(Reason.ESCALATED.value, view.name, detail(remediations=count), "drain"))
                continue
            budget = guards.drain_budget(len(by_pool[pool]), rp.max_concurrent_drains)
            if in_progress[pool] + started[pool] >= budget:
                holds.append(
                    Hold(
                        Reason.DRAIN_BUDGET.value,
                        view.name,
                        detail(pool=pool, draining=in_progress[pool] + started[pool], budget=budget),
                        "drain",
                    )
                )
                continue
            if not view.fatal:
                wait = guards.spacing_wait(last_start, rp.drain_spacing, now)
                if wait > timedelta(0):
                    holds.append(
                        Hold(
                            Reason.DRAIN_SPACING.value,
                            view.name,
                            detail(wait_s=wait.total_seconds()),
                            "drain",
                        )
                    )
                    continue
            loss = guards.gpu_loss(view)
            if not guards.keeps_min_healthy(
                serving[pool] - lost[pool], loss, totals[pool], _min_healthy(policy, pool)
            ):
                holds.append(
                    Hold(
                        Reason.MIN_HEALTHY_CAPACITY.value,
                        view.name,
                        detail(
                            pool=pool,
                            serving_gpus=serving[pool] - lost[pool],
                            loss=loss,
                            total_gpus=totals[pool],
                        ),
                        "drain",
                    )
                )
                continue
            request = snap.state.request_for(view.name)
            after = all_serving - sum(lost.values()) - loss
            if not view.fatal and loss > 0 and snap.demand_gpus is not None and after < snap.demand_gpus:
                if request is None:
                    capacity.append(
                        RequestCapacity(
                            key=action_key("request_capacity", view.name, now.isoformat()),
                            reason=Reason.CAPACITY_REQUEST.value,
                            node=view.name,
                            gpus=loss,
                            since=now,
                            detail=detail(
                                fault=want.reason, demand_gpus=snap.demand_gpus, serving_after=after
                            ),
                        )
                    )
                    holds.append(
                        Hold(
                            Reason.AWAITING_CAPACITY.value,
                            view.name,
                            detail(gpus=loss, waited_s=0.0),
                            "drain",
                        )
                    )
                    waiting.add(view.name)
                    continue
                waited = now - request.since
                if waited < rp.capacity_request_timeout:
                    holds.append(
                        Hold(
                            Reason.AWAITING_CAPACITY.value,
                            view.name,
                            detail(gpus=loss, waited_s=waited.total_seconds()),
                            "drain",
                        )
                    )
                    waiting.add(view.name)
                    continue
            if request is not None:
                capacity.append(
                    CloseCapacityRequest(
                        key=action_key("close_capacity", view.name, request.since.isoformat()),
                        reason=want.reason,
                        node=view.name,
                    )
                )
            started[pool] += 1
            lost[pool] += loss
            last_start = now
        actions.append(
            Drain(
                key=action_key("drain", view.name, view.history.state_since or view.name),
                reason=want.reason,
                node=view.name,
                actor=OPERATORD_OWNER,
                fatal=view.fatal,
                to_state=transition(_state_for(view), want.event),
                detail=detail(resume=want.kind == "resume"),
            )
        )
    pending = {it.view.name for it in drains} | waiting
    return actions, holds, _close_stale_requests(snap, pending, capacity)


def _close_stale_requests(snap: Snapshot, pending: set[str], capacity: list[Action]) -> list[Action]:
    """`capacity` plus a close for each request whose node no longer waits for a drain
    (recovered, drained, gone)."""
    closing = {a.node for a in capacity if isinstance(a, CloseCapacityRequest)}
    for req in snap.state.capacity_requests:
        if req.node not in pending and req.node not in closing:
            capacity.append(
                CloseCapacityRequest(
                    key=action_key("close_capacity", req.node, req.since.isoformat()),
                    reason=Reason.NODE_RECOVERED.value,
                    node=req.node,
                )
            )
    return capacity


def plan_manual_drain(
    snap: Snapshot,
    policy: Policy,
    node_name: str,
    actor: str,
    why: str,
    now: datetime,
    *,
    force: bool = False,
) -> Plan:
    """A person's `operatord drain NODE`: cordon (recording them as owner) and drain, through the
    same guards as the daemon (pause, breaker, concurrent-drain budget, minimum serving GPUs)
    unless `force`. Raises KeyError when the node is not in a policy pool."""
    rp = policy.remediation
    views = build_views(snap.nodes, policy, snap.state, now)
    view = next((v for v in views if v.name == node_name), None)
    if view is None:
        raise KeyError(node_name)
    state = view.history.state
    if state in (S.DRAINED, S.AWAITING_REPAIR):
        return Plan.hold(
            Reason.AWAITING_REPAIR.value, node=node_name, blocked="drain", note=f"already {state.value}"
        )
    if not force:
        if snap.state.pause is not None:
            return Plan.hold(
                Reason.PAUSED.value, node=node_name, blocked="drain", paused_by=snap.state.pause.by
            )
        if snap.state.breaker.open:
            return Plan.hold(Reason.BREAKER_OPEN.value, node=node_name, blocked="drain")
        members = [v for v in views if v.pool == view.pool]
        budget = guards.drain_budget(len(members), rp.max_concurrent_drains)
        busy = guards.draining(v for v in members if v.name != node_name)
        if busy >= budget:
            return Plan.hold(
                Reason.DRAIN_BUDGET.value, node=node_name, blocked="drain", draining=busy, budget=budget
            )
        serving = guards.serving_gpus(members)
        total = sum(v.node.gpus for v in members)
        loss = guards.gpu_loss(view)
        if not guards.keeps_min_healthy(serving, loss, total, _min_healthy(policy, view.pool)):
            return Plan.hold(
                Reason.MIN_HEALTHY_CAPACITY.value,
                node=node_name,
                blocked="drain",
                serving_gpus=serving,
                loss=loss,
                total_gpus=total,
            )
    cordon = Cordon(
        key=action_key("cordon", node_name, actor, now.isoformat()),
        reason=Reason.MANUAL_DRAIN.value,
        node=node_name,
        owner=actor,
        to_state=None,
        take_ownership=True,
        detail=detail(note=why[:200], forced=force),
    )
    drain = Drain(
        key=action_key("drain", node_name, actor, now.isoformat()),
        reason=Reason.MANUAL_DRAIN.value,
        node=node_name,
        actor=actor,
        fatal=view.fatal,
        to_state=transition(state, NodeEvent.HUMAN_DRAIN),
        detail=detail(note=why[:200], forced=force),
    )
    return Plan.of(cordon, drain)


def _burst_gpus_not_serving_yet(snap: Snapshot, policy: Policy, views: Sequence[NodeView]) -> int:
    """GPUs of burst nodes that are up but run no Ready GPU pod yet: a replacement counts once its
    replica serves (design §1.5), not when its GPUs appear (model load takes minutes more).
    Without a pod listing nothing is subtracted (unknown is not "not serving")."""
    if snap.pods is None:
        return 0
    burst_pools = {p.name for p in policy.pools if p.kind == "burst"}
    up = {v.name: v.node.gpus for v in views if v.pool in burst_pools and guards.gpu_loss(v) > 0}
    if not up:
        return 0
    for p in snap.pods:
        if p.node_name in up and p.gpus > 0 and p.ready and not p.deleting and p.phase == "Running":
            del up[p.node_name]
            if not up:
                return 0
    return sum(up.values())
